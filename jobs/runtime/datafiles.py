"""Delta data files written by Python workers and committed by the driver in one Delta transaction.

Where a job's rows are made in Python workers and the table is local (tables.python_files), the workers
write the table's Parquet data files themselves with pyarrow and send the driver only what a Delta `add`
action needs: path, partition values, size and the file's statistics. The driver commits them through
delta-spark's own OptimisticTransaction, so conflict detection, checkpoints and history stay Delta's.

Reads   the rows the job makes (workers); when replacing, the replaced column of the files that may hold
        such rows (driver)
Writes  Parquet data files in the table's folder (workers), then one Delta commit adding them and removing
        or rewriting the files they replace (driver)
Re-run  files of an attempt that never committed (a failed task, a killed job) are never referenced and
        are left to VACUUM; a commit replaces the rows it names, so committing the same input again
        leaves it once.

Why: bronze's rows are mostly page bytes, silver's mostly text. Sent to the JVM to be written, every row
is copied from Arrow into Spark rows, into Parquet pages and compressed there; written by the worker
that made it, it is compressed once. Ingesting 8 x 28 MB of real pages (bench/throughput.py data,
warm): the whole job took 24.7 CPU-s with Spark's writer and 18-20 with this module (reading and writing
alone: 10-13), the same bytes on disk. On the benchmark's 906 MB (warm passes): extract's JVM 16-17 ->
5-7 CPU-s and 65-70 -> 56-58 s, heuristics' JVM 8-11 -> 5 CPU-s.

Files hold the contract's non-partition columns under their own names (no column mapping), in
`<partition column>=<value>/` folders like Spark's. Statistics follow the Delta protocol's per-file
statistics: numRecords, and nullCount/minValues/maxValues for the table's statistics columns (its
`delta.dataSkippingStatsColumns`, else the first 32 columns), strings cut to 32 characters with the max
raised past every string of that prefix, timestamps in milliseconds with the max rounded up.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote, unquote

from schemas.contract import TableContract, in_list

# The Delta Lake versions this module's commit (through delta-spark's internal transaction classes: Delta
# has no public API that adds files written elsewhere) was checked against, by tests/test_datafiles.py and
# tests/test_bronze_silver_jobs.py comparing its tables with Spark's writer. With any other version the
# runtime lets Spark write, and tests/test_datafiles.py fails until the new version is checked and added.
CHECKED_DELTA = ("4.0.1",)


def delta_version(spark) -> str | None:
    """The version of the delta-spark jar the session loaded (its manifest's Implementation-Version)."""
    try:
        cls = spark._jvm.java.lang.Class.forName("org.apache.spark.sql.delta.DeltaLog")
        return cls.getPackage().getImplementationVersion()
    except Exception:                  # not a classic session, or no Delta on the class path
        return None

STRING_PREFIX = 32            # characters of a string statistic, as Delta's own writer keeps
DEFAULT_STATS_COLUMNS = 32    # Delta's delta.dataSkippingNumIndexedCols default
ROW_GROUP_BYTES = 16 << 20    # rows are gathered up to this many bytes per Parquet row group
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class WriteSpec:
    """Everything a worker needs to write one table's data files (plain values: it travels to workers)."""
    location: str                    # the table's folder
    columns: tuple[str, ...]         # stored columns, in order (the contract's, partition columns left out)
    schema: object                   # their pyarrow schema
    partition_by: tuple[str, ...]
    stats_columns: tuple[str, ...]
    compression: str
    compression_level: int | None
    no_dictionary: tuple[str, ...]
    no_statistics: tuple[str, ...]
    write_id: str = ""               # in every file name the write makes, so its files can be found (orphans)


def write_spec(spark, location: str, contract: TableContract) -> WriteSpec:
    """The WriteSpec of a table, with the Parquet settings Spark's writer would use for it (session codec,
    the contract's per-column Parquet properties)."""
    from pyspark.sql.types import StructType

    from jobs.runtime.arrow import arrow_schema

    props = contract.properties or {}
    types = {c.name: c.dtype.simpleString() for c in contract.columns}
    if any(types[c] != "string" for c in contract.partition_by):
        raise ValueError(f"{contract.fullname}: Python-written data files need string partition columns")
    stored = tuple(c for c in contract.column_names if c not in contract.partition_by)
    listed = props.get("delta.dataSkippingStatsColumns")
    stats = tuple(c.strip() for c in listed.split(",")) if listed else stored[:DEFAULT_STATS_COLUMNS]
    # Nested columns get no statistics (Delta's writer keeps their leaves'): files are never skipped on them.
    nested = {c.name for c in contract.columns if types[c.name].startswith(("struct<", "array<", "map<"))}
    codec = (spark.conf.get("spark.sql.parquet.compression.codec", "snappy") or "snappy").lower()
    level = props.get(f"parquet.compression.codec.{codec}.level")

    def off(prefix: str) -> tuple[str, ...]:
        return tuple(c for c in stored if props.get(f"{prefix}#{c}", "").lower() == "false")

    schema = arrow_schema(StructType([f for f in contract.schema.fields if f.name in stored]))
    return WriteSpec(location=location, columns=stored, schema=schema, partition_by=tuple(contract.partition_by),
                     stats_columns=tuple(c for c in stats if c in stored and c not in nested), compression=codec,
                     compression_level=int(level) if level else None,
                     no_dictionary=off("parquet.enable.dictionary"),
                     no_statistics=off("parquet.column.statistics.enabled"), write_id=uuid.uuid4().hex[:16])


def partition_folder(values: dict[str, str | None]) -> str:
    """`col=value/...`, each value percent-escaped outside [A-Za-z0-9._-] (NULL as Hive's default)."""
    def esc(v: str | None) -> str:
        if v is None:
            return "__HIVE_DEFAULT_PARTITION__"
        return "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in v)

    return "/".join(f"{k}={esc(v)}" for k, v in values.items())


class _FileStats:
    """Delta per-file statistics of one data file, gathered batch by batch."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self.rows = 0
        self.nulls = dict.fromkeys(columns, 0)
        self.low: dict = {}
        self.high: dict = {}

    def add(self, batch) -> None:
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        for name in self.columns:
            col = batch.column(name)
            self.nulls[name] += col.null_count
            if col.null_count == len(col):
                continue
            mm = pc.min_max(col)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if isinstance(lo, (bytes, bool)):      # Delta keeps no min/max for binary or boolean columns
                continue
            self.low[name] = lo if name not in self.low else min(self.low[name], lo)
            self.high[name] = hi if name not in self.high else max(self.high[name], hi)

    def json(self) -> str:
        low = {k: v for k, v in ((k, _stat(v, upper=False)) for k, v in self.low.items()) if v is not None}
        high = {k: v for k, v in ((k, _stat(v, upper=True)) for k, v in self.high.items()) if v is not None}
        return json.dumps({"numRecords": self.rows, "minValues": low, "maxValues": high, "nullCount": self.nulls},
                          ensure_ascii=False, separators=(",", ":"))


def _stat(value, upper: bool):
    """A min (upper=False) or max statistic as Delta stores it; None when no valid bound can be written."""
    import datetime

    if isinstance(value, str):
        if len(value) <= STRING_PREFIX:
            return value
        prefix = value[:STRING_PREFIX]
        if not upper:
            return prefix                       # a prefix sorts before the string
        nxt = ord(value[STRING_PREFIX])
        if nxt < 0x7F:
            return prefix + "\x7f"              # above the max, which goes on below U+007F
        return prefix + "\U0010ffff" if nxt < 0x10FFFF else None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:                # TIMESTAMP_NTZ: not written here
            return None
        utc = value.astimezone(datetime.timezone.utc)
        if upper and utc.microsecond % 1000:
            utc += datetime.timedelta(microseconds=1000 - utc.microsecond % 1000)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, float) and value != value:
        return None
    return value


class FileWriter:
    """Writes batches of a table's rows (stored and partition columns) into one Parquet data file per
    partition value, in row groups of about ROW_GROUP_BYTES; close() returns the files as Delta `add`
    actions (JSON text, one per file)."""

    def __init__(self, spec: WriteSpec):
        self.spec = spec
        self.schema = spec.schema
        self._open: dict[tuple, tuple] = {}              # partition values -> (writer, relative path, stats)
        self._pending: dict[tuple, list] = {}            # partition values -> batches not yet written

    def write(self, batch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        by = self.spec.partition_by
        keys = [batch.column(c) for c in by]
        if all(pc.count_distinct(k, mode="all").as_py() == 1 for k in keys):
            self._append(tuple(k[0].as_py() for k in keys), batch)
            return
        for values in pa.Table.from_arrays(keys, names=list(by)).group_by(list(by)).aggregate([]).to_pylist():
            mask = pa.array([True] * batch.num_rows)
            for c in by:
                col, v = batch.column(c), values[c]
                mask = pc.and_(mask, pc.is_null(col) if v is None else pc.fill_null(pc.equal(col, v), False))
            self._append(tuple(values[c] for c in by), batch.filter(mask))

    def _append(self, values: tuple, batch) -> None:
        import pyarrow as pa

        stored = pa.RecordBatch.from_arrays([batch.column(c) for c in self.spec.columns], schema=self.schema)
        for field in self.schema:
            if not field.nullable and stored.column(field.name).null_count:
                raise ValueError(f"NULL in non-nullable column {field.name}")
        pending = self._pending.setdefault(values, [])
        pending.append(stored)
        if sum(b.nbytes for b in pending) >= ROW_GROUP_BYTES:
            self._flush(values)

    def _flush(self, values: tuple) -> None:
        import pyarrow as pa

        pending = self._pending.pop(values, [])
        if not pending:
            return
        writer, _, stats = self._writer(values)
        table = pa.Table.from_batches(pending, schema=self.schema)
        writer.write_table(table, row_group_size=table.num_rows)
        for batch in pending:
            stats.add(batch)

    def _writer(self, values: tuple):
        import pyarrow.parquet as pq

        if values not in self._open:
            folder = partition_folder(dict(zip(self.spec.partition_by, values)))
            name = f"part-{self.spec.write_id}-{uuid.uuid4()}.c000.{self.spec.compression}.parquet"
            rel = f"{folder}/{name}" if folder else name
            os.makedirs(os.path.join(self.spec.location, folder), exist_ok=True)
            columns = self.spec.columns
            writer = pq.ParquetWriter(
                os.path.join(self.spec.location, rel), self.schema, compression=self.spec.compression,
                compression_level=self.spec.compression_level,
                use_dictionary=[c for c in columns if c not in self.spec.no_dictionary],
                write_statistics=[c for c in columns if c not in self.spec.no_statistics])
            self._open[values] = (writer, rel, _FileStats(self.spec.stats_columns))
        return self._open[values]

    def close(self) -> list[str]:
        """Close every file; their `add` actions (file paths URI-encoded relative to the table)."""
        for values in list(self._pending):
            self._flush(values)
        adds = []
        for values, (writer, rel, stats) in self._open.items():
            writer.close()
            adds.append(json.dumps({"add": {
                "path": quote(rel, safe="/="), "partitionValues": dict(zip(self.spec.partition_by, values)),
                "size": os.path.getsize(os.path.join(self.spec.location, rel)),
                "modificationTime": int(time.time() * 1000), "dataChange": True, "stats": stats.json(),
            }}, ensure_ascii=False))
        self._open = {}
        return adds


# ------------------------------------------------------------------------------------- the commit

def commit(spark, spec: WriteSpec, adds: list[str], column: str, values: list[str] | None) -> int | None:
    """Commit the data files `adds` (from FileWriter.close) to the table at spec.location, replacing its
    rows whose `column` is one of `values` (every row when `values` is None), atomically (as replaceWhere
    does). Returns the version committed, None when there was nothing to add or remove.

    The transaction reads the files that may hold such rows (Delta's data skipping on the statistics), so
    a concurrent commit adding rows there is a conflict (tables.with_conflict_retry runs this again). A
    file holding only replaced rows is removed; one holding others too is written again without them."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq


    jvm = spark._jvm
    condition = "true" if values is None else in_list(column, values)
    txn = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, spec.location).startTransaction()
    predicate = (spark.read.format("delta").load(spec.location).where(condition)
                 ._jdf.queryExecution().analyzed().condition())
    candidates = txn.filterFiles(_seq(jvm, [predicate]), False)
    wanted = pa.array(sorted(set(values or ())), pa.string())
    rewriter = FileWriter(spec)
    actions = []
    for i in range(candidates.size()):
        found = candidates.apply(i)
        if values is None or column in spec.partition_by:     # the file's rows are all replaced, or none
            if values is None or _partition_values(jvm, found).get(column) in values:
                actions.append(found.remove())
            continue
        local = os.path.join(spec.location, unquote(found.path()))
        replaced = pc.is_in(pq.read_table(local, columns=[column]).column(column), value_set=wanted)
        hits = pc.sum(replaced.cast(pa.int64())).as_py() or 0
        if not hits:
            continue
        actions.append(found.remove())
        if hits < len(replaced):                 # other rows share the file: keep them in a new one
            parts = _partition_values(jvm, found)
            for batch in pq.ParquetFile(local).iter_batches(batch_size=1024, columns=list(spec.columns)):
                kept = batch.filter(pc.invert(pc.is_in(batch.column(column), value_set=wanted)))
                for c in spec.partition_by:
                    kept = kept.append_column(c, pa.array([parts.get(c)] * kept.num_rows, pa.string()))
                rewriter.write(kept)
    action_of = jvm.org.apache.spark.sql.delta.actions.Action.fromJson
    actions += [action_of(a) for a in adds + rewriter.close()]
    if not actions:
        return None
    op = jvm.org.apache.spark.sql.delta.DeltaOperations.Write(
        jvm.org.apache.spark.sql.SaveMode.Overwrite,
        jvm.scala.Option.apply(_seq(jvm, list(spec.partition_by))),
        jvm.scala.Option.apply(condition), jvm.scala.Option.apply(None))
    return int(txn.commit(_seq(jvm, actions), op))


# ------------------------------------------------------------------------- tasks whose workers write

def written_schema():
    """Spark schema of what each writing task returns: its files' add actions and its kernel's side rows."""
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    return StructType([StructField("adds", ArrayType(StringType(), False), False),
                       StructField("side", ArrayType(StringType(), False), False)])


def write_task_of(spec: WriteSpec, kernel, read):
    """The mapInArrow function of a task that writes data files (tables.rewrite): its input rows (file paths;
    or, with `read`, the source table's data files to read, whose stored fields `read` lists) through
    `kernel` into the table's files; yields one written_schema() row."""
    def task(batches):
        import pyarrow as pa
        from pyspark.sql.types import StructType

        from jobs.runtime.arrow import ARROW_BATCH_ROWS, arrow_schema, read_data_files

        inputs = batches if read is None else read_data_files(batches, arrow_schema(StructType(read)), ARROW_BATCH_ROWS)
        writer, side = FileWriter(spec), []
        for batch in kernel(inputs, side):
            writer.write(batch)
        yield pa.RecordBatch.from_pydict({"adds": [writer.close()], "side": [[json.dumps(r, default=str) for r in side]]},
                                         schema=arrow_schema(written_schema()))
    return task


def collect_written(written) -> tuple[list[str], list[dict]]:
    """Driver side: run the tasks of `written` (a DataFrame of write_task_of rows); every file's add action
    and every side row."""
    adds, side = [], []
    for row in written.collect():
        adds += row.adds
        side += [json.loads(r) for r in row.side]
    return adds, side


def with_side(schema):
    """`schema` (every column nullable) plus a `_side` column: what a kernel yields when Spark writes, its side
    rows travelling beside the table's rows as JSON in `_side`."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField("_side", StringType(), True)]
                      + [StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


def side_channel(kernel, schema):
    """The mapInArrow function of `kernel` when Spark writes: its batches, and its side rows, as with_side rows."""
    def mapped(batches):
        import pyarrow as pa

        from jobs.runtime.arrow import arrow_schema

        out = arrow_schema(with_side(schema))
        names, side = schema.fieldNames(), []

        def side_rows():
            rows = pa.array([json.dumps(r, default=str) for r in side], pa.string())
            side.clear()
            return pa.RecordBatch.from_arrays([rows] + [pa.nulls(len(rows), f.type) for f in list(out)[1:]], schema=out)

        for batch in kernel(batches, side):
            yield pa.RecordBatch.from_arrays([pa.nulls(batch.num_rows, pa.string())] + [batch.column(n) for n in names],
                                             schema=out)
            if side:
                yield side_rows()
        if side:
            yield side_rows()
    return mapped


def _partition_values(jvm, add) -> dict:
    return dict(jvm.scala.jdk.javaapi.CollectionConverters.asJava(add.partitionValues()))


def _seq(jvm, items: list):
    return jvm.PythonUtils.toSeq(jvm.java.util.ArrayList(items))


# ------------------------------------------------------------------- writes that never committed

WRITES_FOLDER = "_lakesift_writes"     # <table>/_lakesift_writes/<write id>.json while a write is open
_WRITE_ID = re.compile(r"^part-([0-9a-f]{16})-")


@contextlib.contextmanager
def open_write(spec: WriteSpec):
    """Around a write of data files by this process: a marker names the write while its files are not
    committed yet. If the write fails, its files are deleted (unless a commit holds them); if the process
    dies, the marker stays and sweep() deletes the files later."""
    from jobs.runtime.tracking import process_id

    folder = os.path.join(spec.location, WRITES_FOLDER)
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, f"{spec.write_id}.json")
    started = time.time()
    with open(marker, "w") as fh:
        json.dump({"process": process_id(os.getpid()), "started": started}, fh)
    try:
        yield
    except BaseException:
        if not committed(spec.location, spec.write_id, started):
            remove_files(uncommitted_files(spec.location, {spec.write_id}))
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(marker)


def committed(location: str, write_id: str, since: float) -> bool:
    """Whether a commit of the table's log since `since` adds a file of the write."""
    log, needle = os.path.join(location, "_delta_log"), f"part-{write_id}-".encode()
    if not os.path.isdir(log):
        return False
    with os.scandir(log) as entries:
        for e in entries:
            if e.name.endswith(".json") and e.stat().st_mtime >= since - 60:
                with open(e.path, "rb") as fh:
                    if needle in fh.read():
                        return True
    return False


def data_files(location: str) -> list[str]:
    """Every Parquet data file under the table folder (the log and our markers left out), relative."""
    out = []
    for root, dirs, files in os.walk(location):
        dirs[:] = [d for d in dirs if not d.startswith(("_delta_log", WRITES_FOLDER, "."))]
        out += [os.path.relpath(os.path.join(root, f), location) for f in files if f.endswith(".parquet")]
    return sorted(out)


def uncommitted_files(location: str, write_ids: set[str]) -> list[str]:
    """Absolute paths of the data files of these writes (to delete: none of them was committed)."""
    return [os.path.join(location, f) for f in data_files(location)
            if (m := _WRITE_ID.match(os.path.basename(f))) and m.group(1) in write_ids]


def remove_files(paths: list[str]) -> int:
    """Delete the files; the bytes freed."""
    freed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            freed += os.path.getsize(path)
            os.remove(path)
    return freed


def dead_writes(location: str) -> dict[str, float]:
    """write id -> start time of the writes of this table whose process (on this machine) has ended
    without closing them: their files were never committed, unless the process died right after its
    commit (committed() tells)."""
    from jobs.runtime.tracking import process_id

    folder, host, dead = os.path.join(location, WRITES_FOLDER), socket.gethostname(), {}
    if not os.path.isdir(folder):
        return dead
    for name in sorted(os.listdir(folder)):
        try:
            with open(os.path.join(folder, name)) as fh:
                info = json.load(fh)
            owner = str(info["process"])
            started = float(info["started"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        owner_host, _, rest = owner.partition(":")
        if owner_host == host and process_id(int(rest.split(":")[0])) != owner:
            dead[name.removesuffix(".json")] = started
    return dead


def sweep(location: str, dry_run: bool = False) -> tuple[list[str], int]:
    """Delete the data files of the dead writes of a table (what a killed job left) and their markers;
    (files, bytes). Every write of the table does this first; `lakesift vacuum` for every table."""
    files, freed = [], 0
    for write_id, started in dead_writes(location).items():
        doomed = [] if committed(location, write_id, started) else uncommitted_files(location, {write_id})
        files += doomed
        if not dry_run:
            freed += remove_files(doomed)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(location, WRITES_FOLDER, f"{write_id}.json"))
        else:
            freed += sum(os.path.getsize(f) for f in doomed if os.path.exists(f))
    return files, freed


def referenced_files(location: str) -> set[str]:
    """Relative paths of every data file the table's log still names (added or removed, by commits and
    checkpoints): files some version of the table holds, which time travel may read."""
    import pyarrow.parquet as pq

    log, refs = os.path.join(location, "_delta_log"), set()

    def note(path: str | None) -> None:
        if path:
            p = unquote(path)
            if p.startswith("file:"):                 # an absolute URI: file:/x or file:///x
                p = os.path.relpath("/" + p[len("file:"):].lstrip("/"), location)
            refs.add(p)

    for root, _, files in os.walk(log):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".json"):
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        action = json.loads(line) if line.strip() else {}
                        for kind in ("add", "remove"):
                            note((action.get(kind) or {}).get("path"))
            elif name.endswith(".parquet") and (".checkpoint" in name or "_sidecars" in root):
                table = pq.read_table(path, columns=[c for c in ("add", "remove") if c in pq.read_schema(path).names])
                for kind in table.column_names:
                    for item in table.column(kind).to_pylist():
                        note((item or {}).get("path"))
    return refs


def orphans(location: str, older_than_s: float, dry_run: bool = False) -> tuple[list[str], int]:
    """Delete the data files no version of the table names: those of writes whose process died or that
    ended without committing them, and files of other writers (Spark's) older than `older_than_s`;
    (files, bytes). Files of writes still open are never touched. The order of the reads below keeps a
    write that starts or ends meanwhile safe: a listed file's write had its marker before the listing."""
    listed = data_files(location)
    folder = os.path.join(location, WRITES_FOLDER)
    open_writes = {n.removesuffix(".json") for n in os.listdir(folder)} if os.path.isdir(folder) else set()
    dead = dead_writes(location)
    refs = referenced_files(location)
    now, doomed = time.time(), []
    for rel in listed:
        if rel in refs:
            continue
        path = os.path.join(location, rel)
        m = _WRITE_ID.match(os.path.basename(rel))
        if m and m.group(1) in open_writes and m.group(1) not in dead:
            continue
        if not m and now - os.path.getmtime(path) < older_than_s:
            continue
        doomed.append(path)
    if dry_run:
        return doomed, sum(os.path.getsize(p) for p in doomed)
    freed = remove_files(doomed)
    for write_id in dead:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, f"{write_id}.json"))
    return doomed, freed

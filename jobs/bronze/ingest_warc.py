"""Bronze: WARC/ARC files -> one row per HTTP response record, and a row for everything unreadable.

Reads   crawl files: local paths, directories (recursively), globs, s3:// https:// dbfs:/ URLs
Writes  bronze.warc_records   the responses of the files ingested
        bronze.ingest_errors  what could not be read: file, offset, error class, message
Re-run  a file already ingested is skipped and adds no rows; --force reads it again and replaces its
        rows in both tables (one atomic Delta commit per table).
Writing a local lakehouse's bronze, the workers write the Parquet data files as they read and the driver
commits them (runtime/datafiles.py): the pages never pass through the JVM. Elsewhere Spark writes them.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import json

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.datafiles import WriteSpec
from jobs.runtime.tracking import job_run
from schemas import bronze

COUNT_KEYS = ("responses", "html", "non_html", "non_http_skipped", "errors")
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
DERIVED_SUFFIXES = (".wet.gz", ".wat.gz", ".wet", ".wat")   # Common Crawl's text/metadata files hold no responses

# What reading emits: one row per response ('response'), per unreadable span ('error'), and one summary
# row per file ('file', with its counts): the union of both tables' columns plus the kind and the counts.
OUTCOMES = StructType(
    [StructField("kind", StringType(), False)]
    + [StructField(f.name, f.dataType, True) for f in bronze.WARC_RECORDS.schema.fields]
    + [StructField("error_class", StringType(), True), StructField("message", StringType(), True)]
    + [StructField(f"n_{k}", LongType(), True) for k in COUNT_KEYS]
    + [StructField("data_file", StringType(), True)]      # kind 'data': the Delta add action of a file written
)
SIDE_COLUMNS = ("kind", "source_file", "source_offset", "record_id", "error_class", "message",
                *[f"n_{k}" for k in COUNT_KEYS])
WRITE_BATCH_BYTES = 32 << 20   # bytes of pages per Parquet row group when the workers write bronze's files


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    inputs: tuple[str, ...] = option(help="files, directories, globs or s3:// https:// dbfs:/ URLs",
                                     flag="--input", metavar="PATH")
    crawl: str | None = option(None, "crawl id for these files (default: warcinfo isPartOf, else CC-MAIN-* in "
                                     "the path)")
    max_payload_bytes: int = option(5 * 1024 * 1024, "keep at most this many bytes of each body; longer ones are "
                                                     "flagged truncated")
    force: bool = option(False, "read files again that were already ingested (replaces their rows)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.inputs:
            raise ValueError("ingest needs at least one --input")
        if self.max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")


def expand_inputs(inputs: tuple[str, ...]) -> list[str]:
    """Files to read, in a stable order. Directories are walked for WARC/ARC files (WET/WAT skipped);
    globs are expanded; a path that matches nothing is kept, so it becomes a FileNotFound error row."""
    out: list[str] = []
    for item in inputs:
        if "://" in item and not item.startswith("file://"):
            out.extend(_expand_remote(item))
            continue
        path = item[len("file://"):] if item.startswith("file://") else item
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                out.extend(
                    os.path.abspath(os.path.join(root, f)) for f in files
                    if f.endswith(ARCHIVE_SUFFIXES) and not f.endswith(DERIVED_SUFFIXES)
                )
        elif any(ch in path for ch in "*?["):
            out.extend(os.path.abspath(p) for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        else:
            out.append(os.path.abspath(path))
    seen: set[str] = set()
    return [p for p in sorted(out) if not (p in seen or seen.add(p))]


def _expand_remote(url: str) -> list[str]:
    if not any(ch in url for ch in "*?["):
        return [url]
    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(url)
    protocol = url.split("://", 1)[0]
    return [p if "://" in p else f"{protocol}://{p}" for p in paths]


def with_file_summary(path: str, rows):
    """The reader's response and error rows, then one 'file' row counting every outcome of the file
    (non-HTTP records are only counted)."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for row in rows:
        kind = row["kind"]
        if kind == "response":
            counts["responses"] += 1
            counts["html" if row["is_html"] else "non_html"] += 1
            yield row
        elif kind == "error":
            counts["errors"] += 1
            yield row
        else:
            counts["non_http_skipped"] += 1
    yield {"kind": "file", "source_file": path, **{f"n_{k}": v for k, v in counts.items()}}


def transform(files: DataFrame, cfg: Config, write: WriteSpec | None = None) -> DataFrame:
    """Outcome rows (responses, errors, one summary per file) of every file in `files.path`. With a
    WriteSpec the workers write the responses into the table's data files themselves, and emit one 'data'
    row per file written instead (runtime/datafiles.py)."""
    max_payload, crawl = cfg.max_payload_bytes, cfg.crawl

    def read_files(batches):
        from jobs.runtime.arrow import arrow_schema, batches as to_batches
        from jobs.runtime.datafiles import FileWriter
        from udfs.warc import ReadOptions, read_archive

        schema = arrow_schema(OUTCOMES)
        records = arrow_schema(bronze.WARC_RECORDS.schema)
        opts = ReadOptions(max_payload_bytes=max_payload, crawl=crawl)
        for batch in batches:
            for path in batch.column(0).to_pylist():
                rows = with_file_summary(path, read_archive(path, opts))
                if write is None:
                    yield from to_batches(rows, schema, max_rows=256, size_of=_payload_size)
                    continue
                writer, side = FileWriter(write), []
                for part in to_batches(_responses(rows, side), records, max_rows=1 << 16,
                                       max_bytes=WRITE_BATCH_BYTES, size_of=_payload_size):
                    writer.write(part)
                side += [{"kind": "data", "source_file": path, "data_file": a} for a in writer.close()]
                yield from to_batches(side, schema)

    return files.mapInArrow(read_files, OUTCOMES)


def _payload_size(row: dict) -> int:
    return len(row.get("payload") or b"")


def _responses(rows, others: list):
    """The response rows of `rows`; every other row is appended to `others`."""
    for row in rows:
        if row["kind"] == "response":
            yield row
        else:
            others.append(row)


def files_frame(spark: SparkSession, paths: list[str]) -> DataFrame:
    return tables.one_task_each(spark, [(p,) for p in paths], "path string")


def earlier_rows(spark: SparkSession, cfg: Config, paths: list[str]) -> tuple[set[str], set[str]]:
    """(files already ingested, files with ingest_errors rows) among `paths`. A file with records, or
    with an error at a known offset, was ingested; one that could not be opened (offset NULL) is read
    again next time: it may exist by then. Delta skips data files by their source_file statistics."""
    records = tables.read_table(spark, cfg, bronze.WARC_RECORDS).where(F.col("source_file").isin(paths))
    errors = tables.read_table(spark, cfg, bronze.INGEST_ERRORS).where(F.col("source_file").isin(paths))
    rows = (records.select("source_file", F.lit(True).alias("ingested"), F.lit(False).alias("error"))
            .unionByName(errors.select("source_file", F.col("source_offset").isNotNull().alias("ingested"),
                                       F.lit(True).alias("error")))
            .groupBy("source_file").agg(F.max("ingested").alias("ingested"), F.max("error").alias("error"))
            .collect())
    return {r.source_file for r in rows if r.ingested}, {r.source_file for r in rows if r.error}


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "ingest") as tracked:
        paths = expand_inputs(cfg.inputs)
        ingested, with_errors = earlier_rows(spark, cfg, paths)
        skipped = set() if cfg.force else ingested
        todo = [p for p in paths if p not in skipped]
        tracked.metrics(files_in=len(paths), files_already_ingested=len(skipped), files_read=len(todo))
        summary = {"run_id": tracked.run_id, "files": len(paths), "files_already_ingested": len(skipped),
                   "files_read": len(todo), "per_file": {}, **dict.fromkeys(COUNT_KEYS, 0)}
        if not todo:
            return summary
        files, where = files_frame(spark, todo), tables.in_list("source_file", todo)
        if tables.python_files(spark, cfg, bronze.WARC_RECORDS):
            side_rows, written = _write_in_workers(spark, cfg, files, todo)
        else:
            side_rows, written = _write_through_spark(cfg, files, where)
        tracked.table_written(bronze.WARC_RECORDS.fullname, written)
        error_rows = [tuple(r.get(c) for c in bronze.INGEST_ERRORS.column_names) for r in side_rows if r["kind"] == "error"]
        if error_rows or with_errors.intersection(todo):      # else there is nothing to add or replace
            errors = spark.createDataFrame(error_rows, bronze.INGEST_ERRORS.schema)
            tracked.table_written(bronze.INGEST_ERRORS.fullname, tables.replace_where(errors, cfg, bronze.INGEST_ERRORS, where))
        per_file = {r["source_file"]: {k: int(r[f"n_{k}"]) for k in COUNT_KEYS} for r in side_rows if r["kind"] == "file"}
        totals = {k: sum(f[k] for f in per_file.values()) for k in COUNT_KEYS}
        tracked.metrics(**{f"rows_{k}": v for k, v in totals.items()})
        tracked.text(_per_file_tsv(per_file), "per_file_counts.tsv")
        summary.update(totals, per_file=per_file)
        return summary


def _write_in_workers(spark: SparkSession, cfg: Config, files: DataFrame, todo: list[str]) -> tuple[list[dict], int]:
    """The workers write bronze's data files as they read; the driver commits them in one transaction.
    Returns the error, per-file and data-file rows, and the version written."""
    spec = tables.write_spec(spark, cfg, bronze.WARC_RECORDS)
    rows = [r.asDict() for r in transform(files, cfg, spec).select(*SIDE_COLUMNS, "data_file").collect()]
    adds = [r["data_file"] for r in rows if r["kind"] == "data"]
    return rows, tables.replace_with_files(spark, cfg, bronze.WARC_RECORDS, spec, adds, "source_file", todo)


def _write_through_spark(cfg: Config, files: DataFrame, where: str) -> tuple[list[dict], int]:
    """Spark writes the responses; the (few) error and per-file rows are gathered by an Observation of the
    same execution, so no file is read twice and no payload is cached."""
    outcomes = transform(files, cfg)
    observed = Observation("ingest")
    side = F.struct(*SIDE_COLUMNS)
    outcomes = outcomes.observe(observed, F.to_json(F.collect_list(F.when(F.col("kind") != "response", side))).alias("side"))
    records = outcomes.where(F.col("kind") == "response").select(*bronze.WARC_RECORDS.column_names)
    written = tables.replace_where(records, cfg, bronze.WARC_RECORDS, where)
    return json.loads(observed.get["side"]), written


def _per_file_tsv(per_file: dict[str, dict[str, int]]) -> str:
    lines = ["source_file\t" + "\t".join(COUNT_KEYS)]
    lines += [f + "\t" + "\t".join(str(c[k]) for k in COUNT_KEYS) for f, c in sorted(per_file.items())]
    return "\n".join(lines) + "\n"


def report(s: dict) -> Report:
    from jobs.console import render_table

    rows = [(os.path.basename(f) or f, c["responses"], c["html"], c["non_html"], c["non_http_skipped"], c["errors"])
            for f, c in sorted(s["per_file"].items())]
    detail = render_table(("file", "responses", "html", "non_html", "non_http", "unreadable"), rows) if rows else ""
    return Report(s["responses"] + s["non_http_skipped"] + s["errors"], s["responses"],
                  f"{s['files_read']} file(s) read, {s['files_already_ingested']} already ingested; {s['html']} html, "
                  f"{s['non_html']} non-html, {s['errors']} unreadable", detail)


STAGE = Stage("ingest", "WARC/ARC files -> bronze.warc_records (+ bronze.ingest_errors)", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(),
              writes=(bronze.WARC_RECORDS.fullname, bronze.INGEST_ERRORS.fullname), report=report)

"""Bronze: WARC/ARC files -> one row per HTTP response record, and a row for everything unreadable.

Reads   crawl files: local paths, directories (recursively), globs, s3:// https:// dbfs:/ URLs
Writes  bronze.warc_records   the responses of the files ingested
        bronze.ingest_errors  what could not be read: file, offset, error class, message
Re-run  a file already ingested is skipped and adds no rows; --force reads it again and replaces its
        rows in both tables (one atomic Delta commit per table).
Reading is a kernel over batches of file paths; tables.rewrite decides how bronze is written (on a local
lakehouse the workers write the Parquet data files as they read: the pages never pass through the JVM).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas import bronze
from udfs.warc import MAX_PAYLOAD_BYTES

COUNT_KEYS = ("responses", "html", "non_html", "non_http_skipped", "errors")
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
DERIVED_SUFFIXES = (".wet.gz", ".wat.gz", ".wet", ".wat")   # Common Crawl's text/metadata files hold no responses


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    inputs: tuple[str, ...] = option(help="files, directories, globs or s3:// https:// dbfs:/ URLs",
                                     flag="--input", metavar="PATH")
    crawl: str | None = option(None, "crawl id for these files (default: warcinfo isPartOf, else CC-MAIN-* in "
                                     "the path)")
    max_payload_bytes: int = option(MAX_PAYLOAD_BYTES, "keep at most this many bytes of each body; longer ones are "
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
    """The reader's response and error rows, then one 'file' row counting them and the non-HTTP responses
    (which are only counted; the other record types, warcinfo, request, metadata…, are not responses)."""
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
        elif kind == "skipped":
            counts["non_http_skipped"] += 1
    yield {"kind": "file", "source_file": path, **{f"n_{k}": v for k, v in counts.items()}}


def kernel(cfg: Config):
    """Batches of crawl-file paths -> batches of bronze.warc_records rows (the responses); the errors and one
    summary row per file (with_file_summary) go to `side`: what tables.rewrite runs in the Python workers."""
    max_payload, crawl = cfg.max_payload_bytes, cfg.crawl

    def read_files(batches, side):
        from jobs.runtime.arrow import arrow_schema, batches as to_batches
        from udfs.warc import ReadOptions, read_archive

        records = arrow_schema(bronze.WARC_RECORDS.schema)
        opts = ReadOptions(max_payload_bytes=max_payload, crawl=crawl)
        for batch in batches:
            for path in batch.column("path").to_pylist():
                rows = with_file_summary(path, read_archive(path, opts))
                yield from to_batches(_responses(rows, side), records, max_rows=256, size_of=_payload_size)

    return read_files


def transform(files: DataFrame, cfg: Config) -> DataFrame:
    """Crawl files (a `path` column) -> bronze.warc_records rows (the kernel on Spark; side rows dropped)."""
    read = kernel(cfg)
    return files.mapInArrow(lambda batches: read(batches, []), bronze.WARC_RECORDS.schema)


def _payload_size(row: dict) -> int:
    return len(row.get("payload") or b"")


def _responses(rows, others: list):
    """The response rows of `rows`; every other row is appended to `others`."""
    for row in rows:
        if row["kind"] == "response":
            yield row
        else:
            others.append(row)


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
        where = tables.in_list("source_file", todo)
        written, side_rows = tables.rewrite(spark, cfg, bronze.WARC_RECORDS, kernel(cfg), "source_file", todo, files=todo)
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

"""Bronze: WARC/ARC files -> one row per HTTP response record, and a row for everything unreadable.

Reads   crawl files: local paths, directories (recursively), globs, s3:// https:// dbfs:/ URLs
Writes  bronze.warc_records   the responses of the files ingested
        bronze.ingest_errors  what could not be read: file, offset, error class, message
Re-run  a file already ingested is skipped and adds no rows; --force reads it again and replaces its
        rows in both tables (one atomic Delta commit per table).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import job_run
from schemas import bronze

ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
COUNT_KEYS = ("responses", "html", "non_html", "non_http_skipped", "errors")
DERIVED_SUFFIXES = (".wet.gz", ".wat.gz", ".wet", ".wat")   # Common Crawl's text/metadata files hold no responses

# What the reader emits for every record: the union of both tables' columns plus the outcome kind.
OUTCOMES = StructType(
    [StructField("kind", StringType(), False)]
    + [StructField(f.name, f.dataType, True) for f in bronze.WARC_RECORDS.schema.fields]
    + [StructField("error_class", StringType(), True), StructField("message", StringType(), True)]
)


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    inputs: tuple[str, ...]
    crawl: str | None = None                       # default: warcinfo isPartOf, else CC-MAIN-* in the path
    max_payload_bytes: int = 5 * 1024 * 1024
    force: bool = False

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


def transform(files: DataFrame, cfg: Config) -> DataFrame:
    """One outcome row per response / unreadable span / non-HTTP record of every file in `files.path`."""
    max_payload, crawl = cfg.max_payload_bytes, cfg.crawl

    def read_files(batches):
        from jobs.runtime.arrow import arrow_schema, batches as to_batches
        from udfs.warc import ReadOptions, read_archive

        schema = arrow_schema(OUTCOMES)
        opts = ReadOptions(max_payload_bytes=max_payload, crawl=crawl)
        for batch in batches:
            for path in batch.column(0).to_pylist():
                yield from to_batches(
                    read_archive(path, opts), schema, max_rows=256,
                    size_of=lambda row: len(row.get("payload") or b""),
                )

    return files.mapInArrow(read_files, OUTCOMES)


def files_frame(spark: SparkSession, paths: list[str]) -> DataFrame:
    """One partition per file (up to 4096 partitions), so files spread over all cores."""
    df = spark.createDataFrame([(p,) for p in paths], "path string")
    return df.repartitionByRange(max(1, min(len(paths), 4096)), "path")


def already_ingested(spark: SparkSession, cfg: Config, paths: list[str]) -> set[str]:
    candidates = spark.createDataFrame([(p,) for p in paths], "source_file string")
    records = tables.read_table(spark, cfg, bronze.WARC_RECORDS).select("source_file")
    # A file that could not be opened (offset NULL) is read again next time: it may exist by then.
    errors = tables.read_table(spark, cfg, bronze.INGEST_ERRORS).where("source_offset IS NOT NULL").select("source_file")
    hits = candidates.join(records.unionByName(errors).distinct(), "source_file", "left_semi")
    return {r.source_file for r in hits.collect()}


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "ingest") as tracked:
        paths = expand_inputs(cfg.inputs)
        skipped = set() if cfg.force else already_ingested(spark, cfg, paths)
        todo = [p for p in paths if p not in skipped]
        tracked.metrics(files_in=len(paths), files_already_ingested=len(skipped), files_read=len(todo))
        summary = {"run_id": tracked.run_id, "files": len(paths), "files_already_ingested": len(skipped),
                   "files_read": len(todo), "per_file": {}}
        if not todo:
            summary.update(dict.fromkeys(COUNT_KEYS, 0))
            return summary
        outcomes = transform(files_frame(spark, todo), cfg).persist()
        try:
            where = tables.in_list("source_file", todo)
            records = outcomes.where(F.col("kind") == "response").drop("kind", "error_class", "message")
            tracked.table_written(bronze.WARC_RECORDS.fullname,
                                  tables.replace_where(records, cfg, bronze.WARC_RECORDS, where))
            errors = outcomes.where(F.col("kind") == "error").select(*bronze.INGEST_ERRORS.column_names)
            tracked.table_written(bronze.INGEST_ERRORS.fullname,
                                  tables.replace_where(errors, cfg, bronze.INGEST_ERRORS, where))
            per_file = {p: dict.fromkeys(COUNT_KEYS, 0) for p in todo} | per_file_counts(outcomes)
        finally:
            outcomes.unpersist()
        totals = {k: sum(f[k] for f in per_file.values()) for k in COUNT_KEYS}
        tracked.metrics(**{f"rows_{k}": v for k, v in totals.items()})
        tracked.text(_per_file_tsv(per_file), "per_file_counts.tsv")
        summary.update(totals, per_file=per_file)
        return summary


def per_file_counts(outcomes: DataFrame) -> dict[str, dict[str, int]]:
    """responses / html / non_html / non_http_skipped / errors for each file (small: files x outcomes)."""
    rows = (
        outcomes.groupBy("source_file")
        .agg(
            F.sum((F.col("kind") == "response").cast("long")).alias("responses"),
            F.sum(((F.col("kind") == "response") & F.col("is_html")).cast("long")).alias("html"),
            F.sum(((F.col("kind") == "response") & ~F.col("is_html")).cast("long")).alias("non_html"),
            F.sum((F.col("kind") == "skipped").cast("long")).alias("non_http_skipped"),
            F.sum((F.col("kind") == "error").cast("long")).alias("errors"),
        )
        .collect()
    )
    return {r.source_file: {k: int(r[k] or 0) for k in COUNT_KEYS} for r in rows}


def _per_file_tsv(per_file: dict[str, dict[str, int]]) -> str:
    lines = ["source_file\t" + "\t".join(COUNT_KEYS)]
    lines += [f + "\t" + "\t".join(str(c[k]) for k in COUNT_KEYS) for f, c in sorted(per_file.items())]
    return "\n".join(lines) + "\n"

"""Silver: heuristic statistics for every document (signal family heuristics_v2; rows of heuristics_v1 stay readable).

Reads   silver.documents            (the crawls asked for; every crawl by default)
Writes  silver.signals_heuristic    (replaces those crawls' partitions)
Re-run  idempotent per crawl.
On a local lakehouse the workers read silver.documents' data files and write the signals' themselves, and
the driver commits them (runtime/datafiles.py): the texts never pass through the JVM.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, option
from jobs.runtime.datafiles import WriteSpec, written_schema
from jobs.runtime.spark import ARROW_BATCH_ROWS
from jobs.runtime.tracking import job_run
from schemas import silver

INPUT_COLUMNS = ("doc_id", "crawl", "text", "url")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to score (default: all)", flag="--crawl", repeat=True)
    max_chars: int = option(1_000_000, "longer texts are scored on their first this-many characters")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_chars <= 0:
            raise ValueError("max_chars must be positive")


def transform(documents: DataFrame, cfg: Config) -> DataFrame:
    max_chars = cfg.max_chars

    def signals(batches):
        from udfs.heuristics import heuristics_batches

        yield from heuristics_batches(batches, max_chars)

    return documents.select(*INPUT_COLUMNS).mapInArrow(signals, silver.SIGNALS_HEURISTIC.schema)


def transform_files(files: DataFrame, cfg: Config, write: WriteSpec | None = None) -> DataFrame:
    """silver.documents data files (rows of local `path` and its `crawl`) -> signals, the Python workers
    reading the Parquet files themselves (the texts skip the JVM). With a WriteSpec they also write
    silver.signals_heuristic's data files and each task returns one row of datafiles.written_schema().
    Only for tables tables.python_files() accepts."""
    max_chars = cfg.max_chars
    fields = {f.name: f for f in silver.DOCUMENTS.schema.fields}
    stored = StructType([fields[c] for c in INPUT_COLUMNS if c != "crawl"])

    def signals(batches):
        from jobs.runtime.arrow import arrow_schema, read_data_files
        from udfs.heuristics import heuristics_batches

        out = heuristics_batches(read_data_files(batches, arrow_schema(stored), ARROW_BATCH_ROWS), max_chars)
        if write is None:
            yield from out
        else:
            from jobs.runtime.datafiles import write_task

            yield from write_task(write, out)

    return files.mapInArrow(signals, silver.SIGNALS_HEURISTIC.schema if write is None else written_schema())


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "compute_heuristics") as tracked:
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        if tables.python_files(spark, cfg, silver.DOCUMENTS) and tables.python_files(spark, cfg, silver.SIGNALS_HEURISTIC):
            files = tables.file_counts(docs, n=F.count(F.lit(1)))
            written, counts = tables.write_from_files(spark, cfg, silver.SIGNALS_HEURISTIC, [f for f in files if f.n],
                                                      lambda todo, spec: transform_files(todo, cfg, spec), crawls or None)
            n_in, n_out = sum(f.n for f in files), counts.get("rows", 0)
        else:
            seen_in, seen_out = Observation("documents"), Observation("signals")
            docs = docs.observe(seen_in, F.count(F.lit(1)).alias("n"))
            signals = transform(docs, cfg).observe(seen_out, F.count(F.lit(1)).alias("n"))
            written = tables.replace_where(signals, cfg, silver.SIGNALS_HEURISTIC, tables.crawl_scope(crawls))
            n_in, n_out = seen_in.get["n"], seen_out.get["n"]
        tracked.table_written(silver.SIGNALS_HEURISTIC.fullname, written)
        tracked.metrics(rows_in_documents=n_in, rows_out_signals=n_out)
        return {"run_id": tracked.run_id, "crawls": crawls, "rows_in_documents": n_in, "rows_out_signals": n_out}

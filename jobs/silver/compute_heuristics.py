"""Silver: heuristic statistics for every document (signal family heuristics_v2; rows of heuristics_v1 stay readable).

Reads   silver.documents            (the crawls asked for; every crawl by default)
Writes  silver.signals_heuristic    (replaces those crawls' partitions)
Re-run  idempotent per crawl.
The statistics are a kernel over Arrow batches; tables.rewrite decides how it reads and writes (on a local
lakehouse, in the Python workers: the texts never pass through the JVM).
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, option
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


def kernel(cfg: Config):
    """Batches of documents (INPUT_COLUMNS, any order) -> batches of signals: what tables.rewrite runs."""
    max_chars = cfg.max_chars

    def signals(batches, side):
        from udfs.heuristics import heuristics_batches

        yield from heuristics_batches(batches, max_chars)

    return signals


def transform(documents: DataFrame, cfg: Config) -> DataFrame:
    """Documents -> signals (the kernel on Spark)."""
    signals = kernel(cfg)
    return documents.select(*INPUT_COLUMNS).mapInArrow(lambda batches: signals(batches, []),
                                                       silver.SIGNALS_HEURISTIC.schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "compute_heuristics", name="heuristics") as tracked:
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        n_in = docs.count()
        written, _ = tables.rewrite(spark, cfg, silver.SIGNALS_HEURISTIC, kernel(cfg), "crawl", crawls or None,
                                    rows=docs, columns=INPUT_COLUMNS, source=silver.DOCUMENTS)
        tracked.table_written(silver.SIGNALS_HEURISTIC.fullname, written)
        n_out = tables.written_counts(spark, cfg, silver.SIGNALS_HEURISTIC, written, "crawl", crawls or None,
                                      {"rows": "count(1)"})["rows"]
        tracked.metrics(rows_in_documents=n_in, rows_out_signals=n_out)
        return {"run_id": tracked.run_id, "crawls": crawls, "rows_in_documents": n_in, "rows_out_signals": n_out}

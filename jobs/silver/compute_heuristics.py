"""Silver: heuristic statistics for every document (signal family heuristics_v1).

Reads   silver.documents            (the crawls asked for; every crawl by default)
Writes  silver.signals_heuristic    (replaces those crawls' partitions)
Re-run  idempotent per crawl.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import job_run
from schemas import silver


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = ()
    max_chars: int = 1_000_000      # longer texts are scored on their first max_chars characters

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_chars <= 0:
            raise ValueError("max_chars must be positive")


def transform(documents: DataFrame, cfg: Config) -> DataFrame:
    max_chars = cfg.max_chars

    def signals(batches):
        from udfs.heuristics import heuristics_batches

        yield from heuristics_batches(batches, max_chars)

    return documents.select("doc_id", "crawl", "text", "url").mapInArrow(signals, silver.SIGNALS_HEURISTIC.schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "compute_heuristics") as tracked:
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        seen_in, seen_out = Observation("documents"), Observation("signals")
        docs = docs.observe(seen_in, F.count(F.lit(1)).alias("n"))
        signals = transform(docs, cfg).observe(seen_out, F.count(F.lit(1)).alias("n"))
        written = tables.replace_where(signals, cfg, silver.SIGNALS_HEURISTIC, tables.crawl_scope(crawls))
        tracked.table_written(silver.SIGNALS_HEURISTIC.fullname, written)
        n_in, n_out = seen_in.get["n"], seen_out.get["n"]
        tracked.metrics(rows_in_documents=n_in, rows_out_signals=n_out)
        return {"run_id": tracked.run_id, "crawls": crawls, "rows_in_documents": n_in, "rows_out_signals": n_out}

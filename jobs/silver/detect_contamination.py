"""Silver: n-gram overlap of every document with evaluation sets (signal family decon_<n>g_<fingerprint>).

Reads   silver.documents (the crawls asked for; every crawl by default) and evaluation files (JSONL): the
        paths given, else those in $LAKESIFT_EVALS
Writes  silver.signals_contamination (replaces the rows of those crawls for this index version)
Re-run  idempotent per crawl; the version changes when the evaluation files or n change.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas import silver
from udfs.decontam import EvalIndex, build_index


def default_eval_paths() -> tuple[str, ...]:
    """$LAKESIFT_EVALS: evaluation files or folders, separated like PATH."""
    return tuple(p for p in os.environ.get("LAKESIFT_EVALS", "").split(os.pathsep) if p)


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to check (default: all)", flag="--crawl", repeat=True)
    evals: tuple[str, ...] = option((), "JSONL evaluation files or folders (default: $LAKESIFT_EVALS)", metavar="PATH")
    ngram: int = option(13, "words per n-gram")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ngram < 3:
            raise ValueError("ngram must be at least 3")
        if not self.eval_paths():
            raise ValueError("no evaluation sets: pass --evals FILE_OR_DIR (JSONL), or set LAKESIFT_EVALS")

    def eval_paths(self) -> tuple[str, ...]:
        return self.evals or default_eval_paths()


def transform(documents: DataFrame, index: EvalIndex) -> DataFrame:
    def detect(batches):
        from udfs.decontam import contamination_batches

        yield from contamination_batches(batches, index)

    return documents.select("doc_id", "crawl", "text").mapInArrow(detect, silver.SIGNALS_CONTAMINATION.schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    index = build_index(list(cfg.eval_paths()), cfg.ngram)
    with job_run(cfg, "detect_contamination", name=f"decontaminate {index.version}", version=index.version) as tracked:
        tracked.params(version=index.version, eval_sets=",".join(index.names), eval_ngrams=len(index.hashes))
        tracked.metrics(**{f"eval_items.{k}": v for k, v in index.items.items()},
                        **{f"eval_malformed_lines.{k}": v for k, v in index.skipped.items()})
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        seen = Observation("contamination")
        out = transform(docs, index).observe(
            seen, F.count(F.lit(1)).alias("rows"), F.count_if("contaminated").alias("contaminated"))
        where = tables.crawl_scope(crawls, f"version = {tables.sql_literal(index.version)}")
        tracked.table_written(silver.SIGNALS_CONTAMINATION.fullname,
                              tables.replace_where(out, cfg, silver.SIGNALS_CONTAMINATION, where))
        counts = {"rows_out_signals": seen.get["rows"], "rows_contaminated": seen.get["contaminated"]}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "version": index.version, "crawls": crawls, "eval_sets": index.names,
                "malformed_eval_lines": sum(index.skipped.values()), **counts}


def report(s: dict) -> Report:
    return Report(s["rows_out_signals"], s["rows_out_signals"],
                  f"{s['rows_contaminated']} of {s['rows_out_signals']} documents share an n-gram with "
                  f"{', '.join(s['eval_sets'])} ({s['version']})"
                  + (f"; {s['malformed_eval_lines']} malformed evaluation lines skipped" if s["malformed_eval_lines"] else ""))


STAGE = Stage("decontaminate", "n-gram overlap of documents with evaluation sets -> silver.signals_contamination",
              Config, lambda spark, cfg, progress: run(spark, cfg), reads=(silver.DOCUMENTS.fullname,),
              writes=(silver.SIGNALS_CONTAMINATION.fullname,), report=report)

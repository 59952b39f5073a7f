"""The main job: a sample crawl through every stage, with progress and a summary.

Reads   a generated sample crawl (jobs/bronze/sample_crawl.py), written once to <home>/samples/
Writes  every table the stages write; one MLflow parent run `demo` with a child run per stage
Re-run  ingest skips the already-ingested sample; the other stages replace their partitions.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from jobs.bronze import ingest_warc, sample_crawl
from jobs.classifiers import classify_quality, train_quality
from jobs.gold import export_shards, select_corpus
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import job_run
from jobs.silver import cluster_duplicates, compute_heuristics, compute_minhash, detect_contamination, extract_documents
from udfs import heuristics

QUALITY_MODEL = "lakesift_quality"        # the model the shipped dclm_like recipe reads


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    pages: int = 400
    seed: int = 7
    crawl: str = "DEMO-2026-01"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pages < 10:
            raise ValueError("the demo needs at least 10 pages")


@dataclass
class StageResult:
    stage: str
    rows_in: int | None
    rows_out: int | None
    seconds: float
    run_id: str | None
    note: str = ""


def sample_path(cfg: Config) -> Path:
    return Path(cfg.home) / "samples" / f"{cfg.crawl}-seed{cfg.seed}-{cfg.pages}p.warc.gz"


def stages(cfg: Config, warc: str) -> list[tuple[str, Callable[[SparkSession], dict], Callable[[dict], tuple]]]:
    """(name, run, (rows_in, rows_out, note) from its summary) for every stage that exists, in order."""
    base = {k: getattr(cfg, k) for k in ("home", "catalog", "schema_prefix", "tracking_uri", "experiment")}
    crawls = (cfg.crawl,)
    reference = Path(cfg.home) / "samples" / "reference-text.txt"
    if not reference.exists():
        sample_crawl.write_reference_text(reference)
    evals = detect_contamination.default_eval_paths()
    decontamination = [(
        "decontaminate",
        lambda s: detect_contamination.run(s, detect_contamination.Config(**base, crawls=crawls, evals=evals)),
        lambda r: (r["rows_out_signals"], r["rows_out_signals"], f"{r['rows_contaminated']} contaminated ({r['version']})"),
    )] if evals else []
    selects = [(
        f"select {name}",
        lambda s, name=name: select_corpus.run(s, select_corpus.Config(**base, recipe=name)),
        lambda r: (r["documents_in"], r["documents_out"], f"gold.corpus v{r['corpus_version']}, {r['tokens_out']:,} tokens"),
    ) for name in ("raw", "heuristics_dedup", "dclm_like")]
    return [
        ("ingest",
         lambda s: ingest_warc.run(s, ingest_warc.Config(**base, inputs=(warc,))),
         lambda r: (r["responses"] + r["non_http_skipped"] + r["errors"], r["responses"],
                    f"{r['html']} html, {r['non_html']} non-html, {r['errors']} unreadable"
                    + (" (already ingested)" if r["files_already_ingested"] else ""))),
        ("extract",
         lambda s: extract_documents.run(s, extract_documents.Config(**base, crawls=crawls)),
         lambda r: (r["rows_in_html"], r["rows_out_documents"],
                    f"{r['rows_out_with_text']} with text, {r['rows_out_extract_errors']} extract errors")),
        ("heuristics",
         lambda s: compute_heuristics.run(s, compute_heuristics.Config(**base, crawls=crawls)),
         lambda r: (r["rows_in_documents"], r["rows_out_signals"], heuristics.VERSION)),
        ("minhash",
         lambda s: compute_minhash.run(s, compute_minhash.Config(**base, crawls=crawls)),
         lambda r: (r["rows_out_signatures"], r["rows_out_signatures"],
                    r["version"] + ("" if r["crawls_signed"] else " (signatures up to date)"))),
        ("dedup",
         lambda s: cluster_duplicates.run(s, cluster_duplicates.Config(**base, crawls=crawls)),
         lambda r: (r["rows_in_signatures"], r["rows_out_representatives"],
                    f"{r['clusters']} clusters, {r['rows_dropped_by_dedup']} duplicates (largest {r['largest_cluster']})")),
        *decontamination,
        ("train-quality",
         lambda s: train_quality.run(s, train_quality.Config(**base, name=QUALITY_MODEL, positives=(str(reference),))),
         lambda r: (r["train_positives"] + r["train_negatives"], None,
                    f"models:/{r['model']}@{r['alias']} v{r['version']}, held-out ROC-AUC {r['roc_auc']:.3f}")),
        ("classify",
         lambda s: classify_quality.run(s, classify_quality.Config(**base, model=f"models:/{QUALITY_MODEL}@champion", crawls=crawls)),
         lambda r: (r["rows_out_scores"], r["rows_out_scores"], f"mean P(good) {r['mean_score']:.3f}")),
        *selects,
        ("export dclm_like",
         lambda s: export_shards.run(s, export_shards.Config(**base, recipe="dclm_like", shards=2)),
         lambda r: (r["documents"], r["documents"], r["output"])),
    ]


def run(spark: SparkSession, cfg: Config, progress=sys.stderr) -> list[StageResult]:
    warc = sample_path(cfg)
    results: list[StageResult] = []
    with job_run(cfg, "demo"):
        if not warc.exists():
            counts = sample_crawl.write_sample_crawl(
                warc, sample_crawl.SampleCrawlSpec(pages=cfg.pages, seed=cfg.seed, crawl=cfg.crawl))
            print(f"wrote sample crawl {warc} ({counts['html']} HTML pages, {counts['non_html']} non-HTML, "
                  f"{counts.get('corrupt', 0)} corrupt record)", file=progress)
        plan = stages(cfg, str(warc))
        for i, (name, step, describe) in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {name} …", file=progress, flush=True)
            started = time.perf_counter()
            summary = step(spark)
            rows_in, rows_out, note = describe(summary)
            results.append(StageResult(name, rows_in, rows_out, time.perf_counter() - started,
                                       summary.get("run_id"), note))
            print(f"[{i}/{len(plan)}] {name} done in {results[-1].seconds:.1f}s: {note}", file=progress, flush=True)
    return results

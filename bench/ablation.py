"""What curation buys: proxy models trained on raw vs curated corpora of the same pool, at the CPU scale.

Raw pool: the 990 real pages of the trafilatura benchmark (made-up WARC headers, real HTML) plus the
generated demo crawl, through ingest -> extract -> heuristics -> dedup; a fastText quality classifier trained
on ../shared/data/text reference text (WikiText-2 validation, Shakespeare, inaugural and State of the Union
addresses, CCNet head documents; never WikiText-2 test, the held-out set) against the pool; then
`ablate --recipes raw heuristics_dedup dclm_like --scale tiny --seeds 2`.
Targets: the ablation finishes in <= 30 minutes here; a curated recipe reaches raw's final held-out bits per
byte with >= 2x fewer tokens.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import SHARED, eval_pages, report, write_pages_as_warc

SCALE = os.environ.get("BENCH_SCALE", "tiny")
SEEDS = int(os.environ.get("BENCH_SEEDS", "2"))


def main() -> None:
    from jobs.bronze import ingest_warc
    from jobs.bronze.sample_crawl import SampleCrawlSpec, write_sample_crawl
    from jobs.classifiers import classify_quality, train_quality
    from jobs.gold import select_corpus
    from jobs.proxy import ablate
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import cluster_duplicates, compute_heuristics, compute_minhash, extract_documents

    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-ablation-"))
    try:
        home = str(tmp / "lakehouse")
        pages = tmp / "real-pages.warc.gz"
        write_pages_as_warc(pages, [(u, r) for u, _, r in eval_pages()], crawl="REAL-PAGES")
        demo = tmp / "demo.warc.gz"
        write_sample_crawl(demo, SampleCrawlSpec(pages=1000, seed=7))
        spark = get_spark(JobConfig(home=home), app_name="bench-ablation")
        started = time.perf_counter()
        ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=(str(pages), str(demo))))
        extract_documents.run(spark, extract_documents.Config(home=home))
        compute_heuristics.run(spark, compute_heuristics.Config(home=home))
        compute_minhash.run(spark, compute_minhash.Config(home=home))
        cluster_duplicates.run(spark, cluster_duplicates.Config(home=home))
        text = SHARED / "text"
        positives = tuple(str(text / n) for n in ("wikitext-2_valid.txt", "tinyshakespeare_input.txt", "nltk_inaugural.zip",
                                                  "nltk_state_union.zip", "ccnet"))
        quality = train_quality.run(spark, train_quality.Config(home=home, name="lakesift_quality", positives=positives,
                                                                  min_words=20, max_examples=20_000))
        classify_quality.run(spark, classify_quality.Config(home=home, model="models:/lakesift_quality@champion"))
        kept = {}
        for recipe in ("raw", "heuristics_dedup", "dclm_like"):
            s = select_corpus.run(spark, select_corpus.Config(home=home, recipe=recipe))
            kept[recipe] = (s["documents_out"], s["tokens_out"])
        pipeline_seconds = time.perf_counter() - started
        print(f"pool built in {pipeline_seconds:.0f}s; kept (documents, estimated tokens): {kept}; "
              f"quality classifier held-out ROC-AUC {quality['roc_auc']:.3f}", flush=True)

        started = time.perf_counter()
        result = ablate.run(spark, ablate.Config(home=home, recipes=("raw", "heuristics_dedup", "dclm_like"), scale=SCALE,
                                                 seeds=SEEDS, limit=100),
                            progress=lambda m: print(f"  {m} ({time.perf_counter() - started:.0f}s)", flush=True))
        ablation_seconds = time.perf_counter() - started
        print(result["table"])
        best = max((v for k, v in result["speedups"].items() if k != "raw" and v), default=None)
        rows = [[recipe, len(items), items[0]["tokens"], round(sum(x["final_heldout_bpb"] for x in items) / len(items), 4),
                 round(sum(x["core_like"] or 0 for x in items) / len(items), 4),
                 f"{result['speedups'][recipe]:.2f}x" if result["speedups"][recipe] else "not reached",
                 round(sum(x["tokens_per_second"] for x in items) / len(items))]
                for recipe, items in result["runs"].items()]
        report("ablation", ["recipe", "seeds", "tokens", "held-out bpb", "CORE-like", "speedup vs raw", "train tokens/s"], rows, {
            "scale": SCALE, "seeds": SEEDS, "pool_seconds": round(pipeline_seconds), "ablation_seconds": round(ablation_seconds),
            "kept": kept, "quality_classifier_roc_auc": quality["roc_auc"], "mlflow_parent_run": result["run_id"],
            "note": "raw pool: real pages (made-up WARC headers) + generated demo crawl; held-out: WikiText-2 test",
            "targets": {"ablation <= 30 min": ablation_seconds <= 1800, "curated >= 2x fewer tokens": bool(best and best >= 2)},
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

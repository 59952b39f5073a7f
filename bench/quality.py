"""Quality classifier: held-out ROC-AUC on real data, and `classify` throughput against a bare fastText loop.

Data: the 990 real pages of the trafilatura benchmark wrapped into WARC records (made-up headers, real
HTML), COPIES times, ingested and extracted: the negatives and the documents to score. Positives: the
reference text in ../shared/data/text (WikiText-2, Shakespeare, inaugural and State of the Union addresses,
CCNet head documents).
Speed: documents/s/core of `lakesift classify` (Spark: Delta read, Arrow to Python, one fastText call per
batch, Delta write, MLflow) and of its scoring pass alone, against a bare loop calling the same model on
the same texts in the same run. Target: Spark overhead <= 50%.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import SHARED, eval_pages, report, write_pages_as_warc

COPIES = int(os.environ.get("BENCH_COPIES", "10"))


def main() -> None:
    from jobs.bronze import ingest_warc
    from jobs.classifiers import classify_quality, train_quality
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import extract_documents
    from udfs.fasttext import load, positive_probability

    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-quality-"))
    try:
        home = str(tmp / "lakehouse")
        pages = [(url, raw) for url, _, raw in eval_pages()]
        warcs = []
        for c in range(COPIES):
            path = tmp / f"pages-{c}.warc.gz"
            write_pages_as_warc(path, [(f"{u}{'&' if '?' in u else '?'}c={c}", r) for u, r in pages], first_id=c * 10_000 + 1)
            warcs.append(str(path))
        spark = get_spark(JobConfig(home=home), app_name="bench-quality")
        cores = spark.sparkContext.defaultParallelism
        ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=tuple(warcs)))
        extract_documents.run(spark, extract_documents.Config(home=home))
        text = SHARED / "text"
        positives = tuple(str(text / n) for n in ("wikitext-2_valid.txt", "wikitext-2_test.txt", "tinyshakespeare_input.txt",
                                                  "nltk_inaugural.zip", "nltk_state_union.zip")) + (str(text / "ccnet"),)
        trained = train_quality.run(spark, train_quality.Config(home=home, name="bench_quality", positives=positives,
                                                                  min_words=20, max_examples=20_000))
        print(f"held-out ROC-AUC {trained['roc_auc']:.4f} (precision {trained['precision']:.3f}, recall {trained['recall']:.3f}, "
              f"{trained['examples']} held-out documents; {trained['train_positives']} positive and "
              f"{trained['train_negatives']} negative training documents)")

        cfg = classify_quality.Config(home=home, model="models:/bench_quality@champion")
        model = classify_quality.resolve_model(cfg)
        docs = spark.table("silver.documents").select("doc_id", "crawl", "text")
        texts = [r.text for r in docs.collect()]
        n = len(texts)

        bare = load(model.path)
        positive_probability(bare, texts[:256])
        started = time.perf_counter()
        for i in range(0, n, 256):
            positive_probability(bare, texts[i:i + 256])
        bare_rate = n / (time.perf_counter() - started)

        ref = classify_quality.ship(spark, model.path)
        classify_quality.transform(docs, ref, model.name, model.version).write.format("noop").mode("overwrite").save()
        started = time.perf_counter()
        classify_quality.transform(docs, ref, model.name, model.version).write.format("noop").mode("overwrite").save()
        pass_rate = n / (time.perf_counter() - started) / cores

        started = time.perf_counter()
        classify_quality.run(spark, cfg)
        job_rate = n / (time.perf_counter() - started) / cores

        rows = [
            ["bare fastText loop (one process)", n, round(bare_rate), "-"],
            ["lakesift classify, scoring pass (Delta read -> Arrow -> fastText)", n, round(pass_rate),
             f"{bare_rate / pass_rate - 1:+.0%}"],
            ["lakesift classify, whole job (+ Delta write, MLflow run)", n, round(job_rate), f"{bare_rate / job_rate - 1:+.0%}"],
        ]
        report("quality", ["measure", "documents", "docs/s/core", "Spark overhead"], rows, {
            "holdout": {k: trained[k] for k in ("roc_auc", "precision", "recall", "f1", "accuracy", "examples")},
            "train_positives": trained["train_positives"], "train_negatives": trained["train_negatives"], "cores": cores,
            "note": "negatives and scored documents: real pages (trafilatura benchmark) in made-up WARC records",
            "targets": {"scoring pass overhead <= 50%": bare_rate / pass_rate - 1 <= 0.5,
                        "whole job overhead <= 50%": bare_rate / job_rate - 1 <= 0.5},
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Near-duplicate detection accuracy on real text with controlled near duplicates, three methods side by side.

Data (bench/dedup_data.py): PAIRS real documents each with one variant at a known exact Jaccard similarity
(targets 0.3 ... 1.0; edits, insertions, deletions, boilerplate swaps, truncations) plus UNRELATED real
documents. A pair is a true duplicate when its exact 5-shingle Jaccard is >= 0.8; any predicted pair we did
not plant is labelled by computing its exact Jaccard too.
Methods, on the same documents and num_perm = 112:
  lakesift     `dedup` jobs (14 x 8 bands; candidate pairs verified by exact shingle Jaccard, by the
               signature estimate, or not at all), clusters -> pairs
  datasketch   MinHashLSH(threshold=0.8) over datasketch MinHash (its default sha1 shingle hashing), query -> pairs
  Spark MLlib  MinHashLSH(numHashTables=5) over binary HashingTF(2^20) of the same shingles,
               approxSimilarityJoin at Jaccard distance 0.2 (it computes exact distances of candidates)
Targets at J >= 0.8: recall >= 0.95, precision >= 0.98.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import report
from bench.dedup_data import corpus, jaccard, normalized_words, shingles

PAIRS = int(os.environ.get("BENCH_PAIRS", "500"))
UNRELATED = int(os.environ.get("BENCH_UNRELATED", "500"))
TARGETS = (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
THRESHOLD = 0.8


def lakesift_pairs(spark, docs: list[str], home: str, verify: str = "exact") -> set[tuple[int, int]]:
    from datetime import datetime, timezone

    from pyspark.sql import functions as F

    from jobs.runtime import tables
    from jobs.silver import cluster_duplicates, compute_minhash
    from schemas import silver

    rows = [(f"d{i:06d}", "BENCH", f"https://bench.example/{i}", "bench.example", datetime(2024, 1, 1, tzinfo=timezone.utc),
             None, t, "en", 1.0, len(t), len(t.split()), "utf-8", "bench", None, "bench", i, False)
            for i, t in enumerate(docs)]
    cfg = compute_minhash.Config(home=home)
    tables.replace_where(spark.createDataFrame(rows, silver.DOCUMENTS.schema), cfg, silver.DOCUMENTS, "crawl = 'BENCH'")
    compute_minhash.run(spark, cfg)
    cluster_duplicates.run(spark, cluster_duplicates.Config(home=home, verify=verify))
    members = defaultdict(list)
    for r in tables.read_table(spark, cfg, silver.DUPLICATES).where(F.col("cluster_size") > 1).collect():
        members[r.cluster_id].append(int(r.doc_id[1:]))
    return {(a, b) for m in members.values() for a in m for b in m if a < b}


def datasketch_pairs(shingle_sets: list[set]) -> set[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=112)
    hashes = []
    for i, s in enumerate(shingle_sets):
        m = MinHash(num_perm=112)
        m.update_batch([" ".join(g).encode("utf-8") for g in s])
        lsh.insert(i, m)
        hashes.append(m)
    return {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if i != j}


def mllib_pairs(spark, word_lists: list[list[str]]) -> set[tuple[int, int]]:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram

    df = spark.createDataFrame([(i, w) for i, w in enumerate(word_lists)], "id long, words array<string>")
    features = Pipeline(stages=[NGram(n=5, inputCol="words", outputCol="grams"),
                                HashingTF(inputCol="grams", outputCol="features", numFeatures=1 << 20, binary=True)]).fit(df).transform(df)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=5, seed=1).fit(features)
    joined = model.approxSimilarityJoin(features, features, 1 - THRESHOLD, distCol="d").where("datasetA.id < datasetB.id")
    return {(r.a, r.b) for r in joined.selectExpr("datasetA.id AS a", "datasetB.id AS b").collect()}


def evaluate(predicted: set, truth: dict, shingle_sets: list[set]) -> dict:
    labels = dict(truth)
    for p in predicted - set(labels):
        labels[p] = jaccard(shingle_sets[p[0]], shingle_sets[p[1]])
    positives = {p for p, j in labels.items() if j >= THRESHOLD}
    tp = len(predicted & positives)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(positives) if positives else 1.0
    by_bucket = {}
    for lo, hi in ((0.0, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.01)):
        in_bucket = [p for p, j in truth.items() if lo <= j < hi]
        by_bucket[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = (sum(p in predicted for p in in_bucket), len(in_bucket))
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall or 1),
            "predicted": len(predicted), "by_bucket": by_bucket}


def main() -> None:
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark

    t = time.perf_counter()
    docs, pairs = corpus(PAIRS, UNRELATED, TARGETS)
    word_lists = [normalized_words(d) for d in docs]
    shingle_sets = [shingles(w) for w in word_lists]
    truth = {(min(p.base, p.variant), max(p.base, p.variant)): p.jaccard for p in pairs}
    print(f"{len(docs)} real documents: {PAIRS} with a near duplicate at exact Jaccard {TARGETS}, "
          f"{UNRELATED} unrelated ({time.perf_counter() - t:.0f}s to build)")
    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-dedup-"))
    try:
        spark = get_spark(JobConfig(home=str(tmp / "lh")), app_name="bench-dedup-accuracy")
        runs = {}
        for name, fn in (
            ("lakesift dedup (14x8, --verify exact)", lambda: lakesift_pairs(spark, docs, str(tmp / "lh"))),
            ("lakesift dedup (14x8, --verify estimate)", lambda: lakesift_pairs(spark, docs, str(tmp / "lh2"), "estimate")),
            ("lakesift dedup (14x8, --verify none)", lambda: lakesift_pairs(spark, docs, str(tmp / "lh3"), "none")),
            ("datasketch MinHashLSH(0.8)", lambda: datasketch_pairs(shingle_sets)),
            ("Spark MLlib MinHashLSH(5 tables)", lambda: mllib_pairs(spark, word_lists)),
        ):
            started = time.perf_counter()
            predicted = fn()
            runs[name] = {**evaluate(predicted, truth, shingle_sets), "seconds": time.perf_counter() - started}
        buckets = list(next(iter(runs.values()))["by_bucket"])
        rows = [[name, round(r["precision"], 4), round(r["recall"], 4), round(r["f1"], 4), r["predicted"],
                 round(r["seconds"], 1)] + [f"{a}/{b}" for a, b in r["by_bucket"].values()] for name, r in runs.items()]
        ours = runs["lakesift dedup (14x8, --verify exact)"]
        report("dedup_accuracy", ["method", "precision", "recall", "F1", "pairs", "seconds"] + [f"found J {b}" for b in buckets],
               rows, {"documents": len(docs), "planted_pairs": len(pairs), "threshold": THRESHOLD,
                      "targets": {"recall>=0.95": ours["recall"] >= 0.95, "precision>=0.98": ours["precision"] >= 0.98}})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Semantic dedup on real text with planted paraphrase pairs: precision and recall of the pairs, next to
MinHash's, and the CPU embedding throughput.

Sample (deterministic): real posts from ../shared/data/pool (Blog Authorship Corpus and 20 Newsgroups `train`
messages, 40 to 400 words), and for some of them a planted copy of the same text, made three ways:
  reordered   its sentences shuffled (the example of the semantic-dedup issue);
  trimmed     shuffled, and one sentence left out;
  thinned     shuffled, and every fifth word left out: almost every word 5-gram is broken, so MinHash
              cannot see the pair, while the meaning stays.
The documents go to a fresh lakehouse as silver.documents (fetch times: originals first), then
`lakesift dedup --level semantic` at each threshold (vectors are embedded once and reused).

A pair counts as found when both documents share a cluster. Precision is over the pairs the semantic
clusters add to MinHash's (pairs sharing a semdedup cluster but not a MinHash one): planted pairs among
them, strictly (an unplanted pair may be a real repost the corpus holds; examples are written to the JSON for
a person to judge).

    python -m bench.semantic_dedup             # BENCH_SEMANTIC_DOCS (default 3000) originals
"""
from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from itertools import combinations

from bench.common import SHARED, need_shared, report

DOCS = int(os.environ.get("BENCH_SEMANTIC_DOCS", "3000"))
PLANTED_PER_KIND = DOCS // 30
KINDS = ("reordered", "trimmed", "thinned")
THRESHOLDS = (0.85, 0.9, 0.95)
T0 = datetime(2004, 1, 1, tzinfo=timezone.utc)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _posts(limit: int) -> list[tuple[str, str]]:
    """(id, text) of real posts of 40..400 words, half blogs, half newsgroups, in file order."""
    out = []
    for path, want in ((SHARED / "pool" / "blogs" / "blogs-00000.jsonl.gz", limit // 2),
                       (SHARED / "pool" / "newsgroups" / "20news-bydate.jsonl.gz", limit - limit // 2)):
        taken = 0
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row.get("split", "train") != "train":
                    continue
                words = len(row["text"].split())
                if 40 <= words <= 400:
                    out.append((row["id"], row["text"].replace("\r\n", "\n")))
                    taken += 1
                    if taken == want:
                        break
    return out


def paraphrase(text: str, kind: str, rng: random.Random) -> str | None:
    sentences = [s for s in _SENTENCE.split(" ".join(text.split())) if s]
    if len(sentences) < 4:
        return None
    rng.shuffle(sentences)
    if kind == "trimmed":
        sentences.pop(rng.randrange(len(sentences)))
    out = " ".join(sentences)
    if kind == "thinned":
        out = " ".join(w for i, w in enumerate(out.split()) if i % 5 != 4)
    return out


def sample() -> tuple[list[tuple[str, str, int]], dict[tuple[str, str], str]]:
    rng = random.Random(20261207)
    posts = _posts(DOCS)
    rows = [(doc_id, text, i) for i, (doc_id, text) in enumerate(posts)]
    planted: dict[tuple[str, str], str] = {}
    order = list(range(len(posts)))
    rng.shuffle(order)
    kinds = [k for k in KINDS for _ in range(PLANTED_PER_KIND)]
    for i in order:
        if not kinds:
            break
        doc_id, text = posts[i]
        copy = paraphrase(text, kinds[-1], rng)
        if copy is None:
            continue
        kind = kinds.pop()
        rows.append((f"{doc_id}~{kind}", copy, len(posts) + len(planted)))
        planted[(doc_id, f"{doc_id}~{kind}")] = kind
    return rows, planted


def cluster_pairs(spark, version: str) -> set[tuple[str, str]]:
    members: dict[str, list[str]] = {}
    for r in spark.table("silver.duplicates").where(f"version = '{version}' AND cluster_size > 1").collect():
        members.setdefault(r.cluster_id, []).append(r.doc_id)
    return {tuple(sorted(p)) for m in members.values() for p in combinations(sorted(m), 2)}


def main() -> None:
    need_shared()
    from pyspark.sql import functions as F

    from jobs.runtime import tables
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import cluster_duplicates, semantic_dedup
    from schemas import silver

    rows, planted = sample()
    texts = {d: t for d, t, _ in rows}
    planted_pairs = {tuple(sorted(p)): kind for p, kind in planted.items()}
    home = tempfile.mkdtemp(prefix="lakesift-semantic-")
    try:
        spark = get_spark(JobConfig(home=home), app_name="bench-semantic-dedup")
        docs = spark.createDataFrame(
            [(d, "SEM", None, None, T0 + timedelta(minutes=m), None, t, "en", 0.9, len(t), len(t.split()), "utf-8",
              "bench", None, "bench", 0, False) for d, t, m in rows], silver.DOCUMENTS.schema)
        # several files, as extract writes them: the embedding runs one task per file
        tables.replace_where(docs.repartition(8), JobConfig(home=home), silver.DOCUMENTS, "true")
        started = time.perf_counter()
        cluster_duplicates.run_stage(spark, cluster_duplicates.Config(home=home), lambda _: None)
        minhash_seconds = time.perf_counter() - started
        minhash = cluster_pairs(spark, "minhash_5g_14x8")
        results, table, timings = {}, [], {}
        for threshold in THRESHOLDS:
            cfg = semantic_dedup.Config(home=home, threshold=threshold, device="cpu")
            started = time.perf_counter()
            s = semantic_dedup.run(spark, cfg)
            timings[threshold] = time.perf_counter() - started
            semantic = cluster_pairs(spark, cfg.tag())
            added = semantic - minhash
            found = {k: sum(1 for p, kk in planted_pairs.items() if kk == k and p in semantic) for k in KINDS}
            by_minhash = {k: sum(1 for p, kk in planted_pairs.items() if kk == k and p in minhash) for k in KINDS}
            hits = sum(1 for p in added if p in planted_pairs)
            unplanted = sorted(p for p in added if p not in planted_pairs)
            results[threshold] = {
                "version": cfg.tag(), "seconds": timings[threshold], "embedded": s["rows_out_embedded"],
                "candidate_pairs": s["candidate_pairs"], "semantic_pairs": s["semantic_pairs"],
                "pairs_added_to_minhash": len(added), "planted_among_added": hits,
                "precision_strict": hits / len(added) if added else None,
                "recall": {k: found[k] / PLANTED_PER_KIND for k in KINDS},
                "recall_minhash": {k: by_minhash[k] / PLANTED_PER_KIND for k in KINDS},
                "unplanted_examples": [[a, b, texts[a][:200], texts[b][:200]] for a, b in unplanted[:10]],
            }
            r = results[threshold]
            table.append([threshold, len(added), hits, "-" if r["precision_strict"] is None else f"{r['precision_strict']:.3f}",
                          *(f"{r['recall'][k]:.3f} ({r['recall_minhash'][k]:.3f})" for k in KINDS)])
        embed_seconds = timings[THRESHOLDS[0]] - min(timings[t] for t in THRESHOLDS[1:])
        vectors = spark.table("silver.embeddings").agg(F.count(F.lit(1)).alias("n")).first().n
    finally:
        shutil.rmtree(home, ignore_errors=True)
    docs_per_s = vectors / embed_seconds if embed_seconds > 0 else None
    print(f"\n{len(rows):,} documents ({len(planted):,} planted copies); MinHash dedup {minhash_seconds:.1f} s; "
          f"embedding about {embed_seconds:.1f} s on CPU ({docs_per_s:.0f} documents/s)")
    report("semantic_dedup", ["cosine", "pairs added to MinHash", "planted among them", "precision (strict)",
                              *(f"recall {k} (MinHash)" for k in KINDS)], table, {
        "command": f"python -m bench.semantic_dedup  (BENCH_SEMANTIC_DOCS={DOCS}; lakesift dedup --level semantic "
                   f"--semantic-threshold T --device cpu for T in {', '.join(map(str, THRESHOLDS))})",
        "documents": len(rows), "originals": len(rows) - len(planted), "planted_per_kind": PLANTED_PER_KIND,
        "minhash_seconds": minhash_seconds, "embedding_seconds_estimate": embed_seconds,
        "embedding_documents_per_second_cpu": docs_per_s, "by_threshold": {str(k): v for k, v in results.items()},
        "note": "real posts (Blog Authorship Corpus, 20 Newsgroups train); planted copies made by shuffling "
                "sentences (trimmed: one dropped; thinned: every fifth word dropped too); embedding time is the "
                "first run's time less the fastest later run's (the later runs reuse the vectors)",
    })


if __name__ == "__main__":
    main()

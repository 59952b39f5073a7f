"""Dedup speed: MinHash signatures per second per core against datasketch, and end-to-end dedup at scale.

1. Signatures: the same ~300-word real documents and num_perm = 112, one core, from text to signature on
   both sides. lakesift's kernel: NFKC/punctuation normalisation, tokenising, hashing, permutations.
   datasketch: the same normalisation written in Python (so both compute signatures of the same shingle
   sets) and MinHash.bulk with its default sha1 hashing; also with bare lower().split() shingles, and on
   our precomputed 32-bit hashes with an identity hashfunc (its permutation step alone, no text handling).
   Target: >= 5x datasketch on the same shingles.
2. End to end: N synthetic documents of ~300 words built from real sentences (../shared/data), 10% of them
   near duplicates (a few words changed), through `compute_minhash` + `cluster_duplicates` on local[*]
   with driver memory 4g; wall time and peak resident memory of the driver JVM and the Python workers.
   Target: 1,000,000 documents in <= 15 minutes with the driver <= 4 GB. Spark MLlib's MinHashLSH
   self-join on the same data, time-boxed.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import report
from bench.dedup_data import real_texts

SIZES = tuple(int(x) for x in os.environ.get("BENCH_DEDUP_SIZES", "100000,300000,1000000").split(","))
MLLIB_SIZE = int(os.environ.get("BENCH_MLLIB_SIZE", "100000"))
MLLIB_TIMEBOX = int(os.environ.get("BENCH_MLLIB_TIMEBOX", "600"))


def sentence_pool() -> list[str]:
    pool = []
    for text in real_texts(min_words=50, max_words=5000):
        pool += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 8 <= len(s.split()) <= 40]
    return sorted(set(pool))


def signature_speed(docs: list[str]) -> dict:
    """Signatures per second on one core, from text, for lakesift and for datasketch three ways."""
    import unicodedata

    from datasketch import MinHash

    from udfs import text as T
    from udfs.minhash import MinHashParams, shingle_hashes, signatures

    def rate(fn) -> float:
        started = time.perf_counter()
        fn()
        return len(docs) / (time.perf_counter() - started)

    def lakesift():
        for i in range(0, len(docs), 256):
            signatures(docs[i:i + 256], MinHashParams())

    punct = re.compile(r"[^\w\s]+|_+")

    def datasketch_same_shingles():
        # our normalisation (NFKC, lower case, punctuation to spaces) in Python, so the shingles are ours
        sets = []
        for d in docs:
            w = punct.sub(" ", unicodedata.normalize("NFKC", d).lower()).split()
            sets.append([" ".join(w[i:i + 5]).encode() for i in range(len(w) - 4)])
        MinHash.bulk(sets, num_perm=112)

    def datasketch_split_only():
        sets = []
        for d in docs:
            w = d.lower().split()
            sets.append([" ".join(w[i:i + 5]).encode() for i in range(len(w) - 4)])
        MinHash.bulk(sets, num_perm=112)

    hashes, offsets = shingle_hashes(T.normalized_words(docs), 5)
    hash_lists = [hashes[a:b].astype(np.uint64).tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    lakesift()                                               # warm-up: per-worker power tables
    return {"lakesift": rate(lakesift), "datasketch_same_shingles": rate(datasketch_same_shingles),
            "datasketch_lower_split": rate(datasketch_split_only),
            "datasketch_prehashed": rate(lambda: MinHash.bulk(hash_lists, num_perm=112, hashfunc=lambda x: x))}


def write_synthetic_documents(spark, home: str, n: int, pool: list[str]) -> None:
    """n documents of 15 real sentences (~300 words); every tenth is a near duplicate of its predecessor."""
    from jobs.runtime import tables
    from jobs.runtime.config import JobConfig
    from schemas import silver

    broadcast = spark.sparkContext.broadcast(pool)

    def build(batches):
        import random
        from datetime import datetime, timedelta, timezone

        import pyarrow as pa

        sentences = broadcast.value
        t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
        for batch in batches:
            ids = batch.column("id").to_pylist()
            texts = []
            for i in ids:
                base = i - 1 if i % 10 == 9 else i
                rng = random.Random(base)
                words = " ".join(rng.choice(sentences) for _ in range(15)).split()
                if base != i:
                    edit = random.Random(-i)
                    for _ in range(3):
                        words[edit.randrange(len(words))] = "edited"
                texts.append(" ".join(words))
            n_rows = len(ids)
            yield pa.RecordBatch.from_pydict({
                "doc_id": [f"doc-{i:08d}" for i in ids], "crawl": ["SYNTH"] * n_rows,
                "url": [f"https://synthetic.example/{i}" for i in ids], "host": ["synthetic.example"] * n_rows,
                "warc_date": [t0 + timedelta(seconds=i) for i in ids], "title": [None] * n_rows, "text": texts,
                "language": ["en"] * n_rows, "language_score": [1.0] * n_rows,
                "char_count": [len(t) for t in texts], "word_count": [len(t.split()) for t in texts],
                "charset": ["utf-8"] * n_rows, "extractor": ["synthetic"] * n_rows, "extract_error": [None] * n_rows,
                "source_file": ["synthetic"] * n_rows, "source_offset": ids, "body_truncated": [False] * n_rows,
            }, schema=_arrow(silver.DOCUMENTS.schema))

    docs = spark.range(n, numPartitions=max(4, n // 25_000)).mapInArrow(build, silver.DOCUMENTS.schema)
    tables.replace_where(docs, JobConfig(home=home), silver.DOCUMENTS, "crawl = 'SYNTH'")


def _arrow(schema):
    from jobs.runtime.arrow import arrow_schema

    return arrow_schema(schema)


class PeakMemory:
    """Samples the resident memory of the driver JVM and of Python worker processes every 0.5 s."""

    def __init__(self, jvm_pid: int):
        self.jvm_pid, self.jvm_peak, self.workers_peak = jvm_pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _workers(self) -> int:
        total = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"pyspark.daemon" in cmd or b"pyspark.worker" in cmd:
                total += self._rss(int(pid))
        return total

    def _run(self):
        while not self._stop.is_set():
            self.jvm_peak = max(self.jvm_peak, self._rss(self.jvm_pid))
            self.workers_peak = max(self.workers_peak, self._workers())
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def dedup_run(spark, home: str) -> dict:
    from jobs.silver import cluster_duplicates, compute_minhash

    started = time.perf_counter()
    sig = compute_minhash.run(spark, compute_minhash.Config(home=home))
    signed = time.perf_counter()
    dup = cluster_duplicates.run(spark, cluster_duplicates.Config(home=home))
    return {"seconds": time.perf_counter() - started, "signature_seconds": signed - started,
            "cluster_seconds": time.perf_counter() - signed, "documents": sig["rows_out_signatures"],
            "clusters": dup["clusters"], "duplicates": dup["rows_dropped_by_dedup"], "rounds": dup["cc_rounds"]}


def mllib_timeboxed(spark, home: str, timebox: int) -> dict:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import HashingTF, MinHashLSH, NGram, RegexTokenizer

    df = spark.read.format("delta").load(f"{home}/silver/documents").select("doc_id", "text")
    stages = [RegexTokenizer(inputCol="text", outputCol="words", pattern="\\W+"), NGram(n=5, inputCol="words", outputCol="g"),
              HashingTF(inputCol="g", outputCol="f", numFeatures=1 << 20, binary=True)]
    features = Pipeline(stages=stages).fit(df).transform(df).where("size(g) > 0")
    model = MinHashLSH(inputCol="f", outputCol="h", numHashTables=5, seed=1).fit(features)
    result: dict = {}

    def work():
        try:
            spark.sparkContext.setJobGroup("mllib", "MLlib MinHashLSH self-join", interruptOnCancel=True)
            started = time.perf_counter()
            pairs = model.approxSimilarityJoin(features, features, 0.2, "d").where("datasetA.doc_id < datasetB.doc_id").count()
            result.update(seconds=time.perf_counter() - started, pairs=pairs)
        except Exception as exc:
            result.setdefault("error", type(exc).__name__)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timebox)
    if thread.is_alive():
        spark.sparkContext.cancelJobGroup("mllib")
        thread.join(60)
        return {"seconds": None, "note": f"did not finish within {timebox}s; cancelled"}
    return result


def main() -> None:
    os.environ.setdefault("LAKESIFT_DRIVER_MEMORY", "4g")
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark

    texts = [" ".join(t.split()[:300]) for t in real_texts()]
    speed = signature_speed(texts * 3)
    best_ds = speed["datasketch_same_shingles"]
    print(f"signatures/s on one core: lakesift {speed['lakesift']:.0f}; datasketch on the same shingles {best_ds:.0f} "
          f"({speed['lakesift'] / best_ds:.1f}x), with lower().split() only {speed['datasketch_lower_split']:.0f}, "
          f"permutations alone on pre-hashed input {speed['datasketch_prehashed']:.0f}")

    pool = sentence_pool()
    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-dedup-speed-"))
    rows, scaling = [], []
    try:
        spark = get_spark(JobConfig(home=str(tmp / "boot")), app_name="bench-dedup-speed")
        jvm_pid = spark.sparkContext._gateway.proc.pid
        cores = spark.sparkContext.defaultParallelism
        mllib = None
        for n in SIZES:
            home = str(tmp / f"n{n}")
            t = time.perf_counter()
            write_synthetic_documents(spark, home, n, pool)
            print(f"{n} synthetic documents written in {time.perf_counter() - t:.0f}s", flush=True)
            with PeakMemory(jvm_pid) as mem:
                run = dedup_run(spark, home)
            run.update(n=n, jvm_peak_gb=mem.jvm_peak / 1e9, workers_peak_gb=mem.workers_peak / 1e9)
            scaling.append(run)
            print(f"  dedup {n}: {run['seconds']:.0f}s ({run['signature_seconds']:.0f}s signatures, "
                  f"{run['cluster_seconds']:.0f}s clusters), driver JVM peak {run['jvm_peak_gb']:.2f} GB", flush=True)
            if n != MLLIB_SIZE:
                shutil.rmtree(home, ignore_errors=True)
        # MLlib last: a JVM never returns heap it grew, so it would inflate the memory readings above.
        if MLLIB_SIZE in SIZES:
            mllib = mllib_timeboxed(spark, str(tmp / f"n{MLLIB_SIZE}"), MLLIB_TIMEBOX)
            print(f"  MLlib MinHashLSH on {MLLIB_SIZE}: {mllib}", flush=True)
        rows.append(["signatures/s/core, lakesift kernel", round(speed["lakesift"]), "", ""])
        rows.append(["signatures/s/core, datasketch, same shingles (Python NFKC/punct + MinHash.bulk)",
                     round(best_ds), "", f"lakesift {speed['lakesift'] / best_ds:.1f}x"])
        rows.append(["signatures/s/core, datasketch, lower().split() shingles",
                     round(speed["datasketch_lower_split"]), "",
                     f"lakesift {speed['lakesift'] / speed['datasketch_lower_split']:.1f}x (different shingles)"])
        rows.append(["signatures/s/core, datasketch permutations only (pre-hashed input)",
                     round(speed["datasketch_prehashed"]), "", "reference: no text handling at all"])
        for r in scaling:
            rows.append([f"lakesift dedup, {r['n']:,} docs ({cores} cores)", f"{r['seconds']:.0f}s",
                         f"JVM {r['jvm_peak_gb']:.2f} GB, workers {r['workers_peak_gb']:.2f} GB",
                         f"{r['clusters']} clusters, {r['duplicates']} duplicates, {r['rounds']} rounds"])
        if mllib is not None:
            rows.append([f"Spark MLlib MinHashLSH self-join, {MLLIB_SIZE:,} docs",
                         f"{mllib['seconds']:.0f}s" if mllib.get("seconds") else mllib.get("note", mllib.get("error")),
                         "", f"{mllib.get('pairs', '')} pairs"])
        largest = scaling[-1]
        report("dedup_speed", ["measure", "value", "memory", "result"], rows, {
            "signatures_per_s": speed, "speedup_vs_datasketch_from_text": speed["lakesift"] / best_ds,
            "scaling": scaling, "mllib": mllib, "cores": cores,
            "targets": {">=5x datasketch (same shingles)": speed["lakesift"] / best_ds >= 5,
                        "1M in <=15 min": largest["n"] >= 1_000_000 and largest["seconds"] <= 900,
                        "driver <= 4 GB": all(r["jvm_peak_gb"] <= 4.0 for r in scaling)},
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

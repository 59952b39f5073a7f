"""Dedup jobs on a local SparkSession: clusters, representatives, adversarial corpora, incremental runs."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.silver import cluster_duplicates, compute_minhash
from schemas import silver

pytestmark = pytest.mark.filterwarnings("ignore")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
VOCAB = [f"word{i}" for i in range(20000)]


def documents(spark, rows, crawl="C1"):
    """silver.documents rows from (doc_id, text[, url[, minutes after T0]])."""
    out = []
    for r in rows:
        doc_id, text = r[0], r[1]
        url = r[2] if len(r) > 2 else f"https://site.example/{doc_id}"
        date = T0 + timedelta(minutes=r[3] if len(r) > 3 else 0)
        out.append((doc_id, crawl, url, "site.example", date, None, text, "en", 0.9, len(text), len(text.split()),
                    "utf-8", "test", None, "f.warc.gz", 0, False))
    return spark.createDataFrame(out, silver.DOCUMENTS.schema)


def cluster(spark, docs, home, **kw):
    """transform() of both jobs, in memory: doc_id -> row of silver.duplicates."""
    sig_cfg = compute_minhash.Config(home=home, **{k: v for k, v in kw.items() if k in ("ngram", "bands", "rows", "seed")})
    signals = compute_minhash.transform(docs, sig_cfg)
    out, info = cluster_duplicates.transform(signals, docs, cluster_duplicates.Config(home=home, **kw))
    return {r.doc_id: r for r in out.collect()}, info


def words(rng, n):
    return [rng.choice(VOCAB) for _ in range(n)]


def test_exact_url_and_near_duplicates_cluster_with_the_earliest_as_representative(spark, home):
    rng = random.Random(1)
    base = words(rng, 300)
    near = list(base)
    near[150] = "changed"                                                 # one word: J of 5-grams ~ 0.97
    docs = documents(spark, [
        ("a", " ".join(base), "https://x.org/a", 30),
        ("b", " ".join(base).upper() + " !!", "https://y.org/b", 10),   # same normalised text, fetched earlier
        ("c", " ".join(near), "https://z.org/c", 20),
        ("d", " ".join(words(rng, 300)), "http://www.x.org/a/#top", 40),   # same URL as a, different text
        ("e", " ".join(words(rng, 300)), "https://other.org/e", 50),
    ])
    rows, _ = cluster(spark, docs, home)
    assert {k: rows[k].cluster_size for k in "abcde"} == {"a": 4, "b": 4, "c": 4, "d": 4, "e": 1}
    assert {rows[k].cluster_id for k in "abcd"} == {"b"} and rows["b"].is_representative
    assert [k for k in "abcde" if rows[k].is_representative] == ["b", "e"]
    assert rows["a"].exact_group == rows["b"].exact_group != rows["c"].exact_group
    assert rows["a"].url_group == rows["d"].url_group != rows["e"].url_group
    assert rows["a"].version == "minhash_5g_14x8" and rows["a"].scope == "crawl"


def test_outputs_match_their_contracts(spark, home):
    docs = documents(spark, [("a", "one two three four five six"), ("b", "")])
    signals = compute_minhash.transform(docs, compute_minhash.Config(home=home))
    assert [(f.name, f.dataType.simpleString()) for f in signals.schema] == silver.SIGNALS_MINHASH.columns_and_types()
    out, _ = cluster_duplicates.transform(signals, docs, cluster_duplicates.Config(home=home))
    assert [(f.name, f.dataType.simpleString()) for f in out.schema] == silver.DUPLICATES.columns_and_types()


def test_below_threshold_pairs_are_verified_away(spark, home):
    rng = random.Random(2)
    base = words(rng, 200)
    half = base[:100] + words(rng, 100)                  # J ~ 0.33: may share a band by chance, never verified
    docs = documents(spark, [("a", " ".join(base)), ("b", " ".join(half))])
    rows, _ = cluster(spark, docs, home, bands=60, rows=1)    # 1-row bands: almost surely a candidate
    assert rows["a"].cluster_size == rows["b"].cluster_size == 1
    estimated, _ = cluster(spark, docs, home, bands=60, rows=1, verify="estimate")
    assert estimated["a"].cluster_size == 1
    unverified, _ = cluster(spark, docs, home, bands=60, rows=1, verify="none")
    assert unverified["a"].cluster_size == 2


@pytest.mark.slow                     # about a minute on 2 cores
def test_chain_of_ten_thousand_near_duplicates_is_one_cluster(spark, home):
    """doc i = words[i : i+200]: neighbours share 199 words (J ~ 0.99), distant ones nothing."""
    rng = random.Random(3)
    stream = words(rng, 10_200)
    docs = documents(spark, [(f"d{i:05d}", " ".join(stream[i:i + 200]), f"https://c.example/{i}", i) for i in range(10_000)])
    rows, info = cluster(spark, docs, home)
    assert {r.cluster_size for r in rows.values()} == {10_000}
    assert {r.cluster_id for r in rows.values()} == {"d00000"}
    assert info["cc_rounds"] <= 40


@pytest.mark.slow
def test_hundred_thousand_identical_documents(spark, home):
    docs = spark.range(100_000).select(
        F.format_string("doc%06d", "id").alias("doc_id"), F.lit("C1").alias("crawl"),
        F.format_string("https://mirror%d.example/page", "id").alias("url"), F.lit("mirror.example").alias("host"),
        F.lit(T0).alias("warc_date"), F.lit(None).cast("string").alias("title"),
        F.lit("the very same page copied to one hundred thousand mirrors of the web").alias("text"),
        F.lit("en").alias("language"), F.lit(0.9).alias("language_score"), F.lit(70).alias("char_count"),
        F.lit(12).alias("word_count"), F.lit("utf-8").alias("charset"), F.lit("test").alias("extractor"),
        F.lit(None).cast("string").alias("extract_error"), F.lit("f").alias("source_file"), F.lit(0).cast("long").alias("source_offset"))
    signals = compute_minhash.transform(docs, compute_minhash.Config(home=home))
    out, _ = cluster_duplicates.transform(signals, docs, cluster_duplicates.Config(home=home))
    stats = out.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("cluster_id").alias("clusters"),
                    F.count_if("is_representative").alias("reps"), F.min("cluster_size").alias("size")).first()
    assert (stats.n, stats.clusters, stats.reps, stats.size) == (100_000, 1, 1, 100_000)


def test_short_empty_and_unique_documents(spark, home):
    rng = random.Random(4)
    docs = documents(spark, [
        ("s1", "Tiny page", "https://a/1"), ("s2", "tiny PAGE.", "https://a/2"), ("s3", "tiny pages", "https://a/3"),
        ("e1", "", "https://a/4"), ("e2", "   ", "https://a/5"),
        *[(f"u{i}", " ".join(words(rng, 50)), f"https://u/{i}") for i in range(20)],
    ])
    rows, _ = cluster(spark, docs, home)
    assert rows["s1"].cluster_id == rows["s2"].cluster_id and rows["s1"].cluster_size == 2   # same words: one shingle
    assert rows["s3"].cluster_size == 1
    assert rows["e1"].cluster_size == rows["e2"].cluster_size == 1                          # empty texts are not duplicates
    assert rows["e1"].exact_group is None and rows["e1"].is_representative
    assert all(rows[f"u{i}"].cluster_size == 1 and rows[f"u{i}"].is_representative for i in range(20))


def _write_documents(spark, home, docs, crawl):
    cfg = compute_minhash.Config(home=home)
    tables.replace_where(docs, cfg, silver.DOCUMENTS, tables.in_list("crawl", [crawl]))


def _corpus(spark, seed, crawl, minutes, shared=None):
    rng = random.Random(seed)
    rows = []
    for i in range(60):
        text = words(rng, 120)
        rows.append((f"{crawl}-{i}", " ".join(text), f"https://{crawl}.example/{i}", minutes + i))
        if i % 4 == 0:
            edited = list(text)
            edited[rng.randrange(120)] = "edited"
            rows.append((f"{crawl}-{i}-near", " ".join(edited), f"https://{crawl}.example/n{i}", minutes + 100 + i))
    for j, text in enumerate(shared or []):
        rows.append((f"{crawl}-shared-{j}", text, f"https://{crawl}.example/s{j}", minutes + 500 + j))
    return documents(spark, rows, crawl)


@pytest.mark.slow                     # about a minute on 2 cores
def test_incremental_global_dedup_equals_a_full_run(spark, tmp_path):
    rng = random.Random(9)
    common = [" ".join(words(rng, 120)) for _ in range(5)]
    a_docs, b_docs = _corpus(spark, 1, "A", 0, common), _corpus(spark, 2, "B", 10_000, common)

    incremental = str(tmp_path / "incremental")
    _write_documents(spark, incremental, a_docs, "A")
    compute_minhash.run(spark, compute_minhash.Config(home=incremental))
    cluster_duplicates.run(spark, cluster_duplicates.Config(home=incremental, scope="global"))
    reps_after_a = {r.cluster_id for r in spark.table("silver.duplicates").where("scope = 'global'").collect()}
    signed_a = spark.table("silver.signals_minhash").where("crawl = 'A'").select("doc_id", "signature").collect()
    _write_documents(spark, incremental, b_docs, "B")
    sig = compute_minhash.run(spark, compute_minhash.Config(home=incremental))
    assert sig["crawls_signed"] == ["B"]                                   # A's signatures are not recomputed
    cluster_duplicates.run(spark, cluster_duplicates.Config(home=incremental, scope="global"))
    got = {r.doc_id: (r.cluster_id, r.cluster_size, r.is_representative)
           for r in spark.table("silver.duplicates").where("scope = 'global'").collect()}
    assert spark.table("silver.signals_minhash").where("crawl = 'A'").select("doc_id", "signature").collect() == signed_a

    full = str(tmp_path / "full")
    _write_documents(spark, full, a_docs, "A")
    _write_documents(spark, full, b_docs, "B")
    compute_minhash.run(spark, compute_minhash.Config(home=full))
    cluster_duplicates.run(spark, cluster_duplicates.Config(home=full, scope="global"))
    want = {r.doc_id: (r.cluster_id, r.cluster_size, r.is_representative)
            for r in spark.table("silver.duplicates").where("scope = 'global'").collect()}
    assert got == want and len(got) == 2 * (60 + 15 + 5)
    shared = [v for k, v in want.items() if "shared" in k]
    assert {size for _, size, _ in shared} == {2}                          # each shared text: one copy per crawl
    assert {cid for cid, _, _ in shared} <= reps_after_a                   # A's representatives stay
    assert {cid for cid, _, _ in shared} == {f"A-shared-{j}" for j in range(5)}


@pytest.mark.slow          # a whole dedup twice: in the slow tier with the other determinism checks
def test_rerun_gives_identical_outputs(spark, home):
    docs = _corpus(spark, 5, "R", 0)
    _write_documents(spark, home, docs, "R")
    compute_minhash.run(spark, compute_minhash.Config(home=home))
    first = cluster_duplicates.run(spark, cluster_duplicates.Config(home=home))
    rows1 = sorted(spark.table("silver.duplicates").collect())
    again = cluster_duplicates.run(spark, cluster_duplicates.Config(home=home))
    assert sorted(spark.table("silver.duplicates").collect()) == rows1
    assert first["clusters"] == again["clusters"] == 15 and first["rows_dropped_by_dedup"] == 15

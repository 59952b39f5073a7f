"""Semantic dedup: LSH over embeddings, verified cosine pairs, clusters merged with MinHash's, incremental runs;
with the real all-MiniLM-L6-v2 encoder on CPU."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.silver import cluster_duplicates
from schemas import silver
from udfs.semantic import SemanticParams, band_keys, candidate_probability, from_fp16_bytes, to_fp16_bytes

pytestmark = pytest.mark.filterwarnings("ignore")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)

COUNCIL = ("The city council met on Tuesday to discuss the new budget for the coming year. Several members objected "
           "to the deep cuts in the parks department and the libraries. The mayor promised a revised plan by next "
           "month. Residents packed the hall to voice their concerns about the closures.")
COUNCIL_REWORDED = ("The city council met on Tuesday to talk about the new budget for the coming year. Several members "
                    "objected to the deep cuts in the parks department and the libraries. The mayor promised a "
                    "revised plan by next month. Residents filled the hall to voice their concerns about the closures.")
RECIPE = ("Whisk two eggs with a cup of milk and a pinch of salt. Pour the mixture over cubes of stale bread and let "
          "it soak for ten minutes. Bake in a buttered dish at 180 degrees until the top is golden and crisp.")
OTHERS = [
    "The probe entered orbit around Jupiter after a five year journey, and its first images show storms larger than Earth.",
    "Our team lost the final match on penalties after a goalless draw that lasted well into extra time last night.",
    "To reset the router, hold the small button on the back for ten seconds until the lights begin to blink.",
    "The novel follows three sisters who inherit a crumbling farmhouse and must decide whether to sell it.",
    "Interest rates rose again this quarter, and economists expect mortgage costs to climb through the winter.",
]


def test_lsh_keys_are_deterministic_and_collide_by_cosine():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((200, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)

    def near(cos):
        noise = rng.standard_normal(base.shape).astype(np.float32)
        noise -= (noise * base).sum(1, keepdims=True) * base
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        return cos * base + np.sqrt(1 - cos * cos) * noise

    p = SemanticParams()
    keys = band_keys(base, p)
    assert keys.shape == (200, p.bands) and (band_keys(base.copy(), p) == keys).all()
    for cos in (0.98, 0.9, 0.5):
        share = (band_keys(near(cos), p) == keys).any(axis=1).mean()
        assert abs(share - candidate_probability(cos, p.bands, p.rows)) < 0.1, cos
    assert not (band_keys(base, SemanticParams(seed=2)) == keys).any(axis=1).all()
    restored = from_fp16_bytes(to_fp16_bytes(base))
    assert restored.shape == base.shape and np.abs(restored - base).max() < 1e-3
    with pytest.raises(ValueError):
        SemanticParams(threshold=1.0)


def documents(spark, rows, crawl):
    return spark.createDataFrame(
        [(d, crawl, f"https://s.example/{d}", "s.example", T0 + timedelta(minutes=m), None, t, "en", 0.9, len(t),
          len(t.split()), "utf-8", "test", None, "f.warc.gz", 0, False) for d, t, m in rows], silver.DOCUMENTS.schema)


def _dedup(spark, home, scope="crawl"):
    cfg = cluster_duplicates.Config(home=home, scope=scope, levels=("semantic",), device="cpu")
    return cluster_duplicates.run_stage(spark, cfg, lambda _: None)


def _clusters(spark, version):
    return {r.doc_id: (r.cluster_id, r.cluster_size, r.is_representative)
            for r in spark.table("silver.duplicates").where(f"version = '{version}'").collect()}


def test_bag_of_sentences_vectors_ignore_sentence_order_with_the_real_encoder():
    from udfs.neural import RunnerOptions, default_encoder_path
    from udfs.semantic import document_vectors

    sentences = COUNCIL.split(". ")
    shuffled = ". ".join([sentences[2], sentences[0], sentences[3].rstrip("."), sentences[1]]) + "."
    texts = [COUNCIL, shuffled.replace(" ", "\n", 3), COUNCIL_REWORDED, RECIPE, "   "]
    vectors, has = document_vectors(texts, default_encoder_path(), RunnerOptions(max_tokens=64, device="cpu"), 16, 300)
    assert has.tolist() == [True, True, True, True, False]
    cos = vectors[:4] @ vectors[:4].T
    assert cos[0, 1] == pytest.approx(1.0, abs=1e-5)                      # same sentences, another order and wrapping
    assert 0.95 <= cos[0, 2] < 0.9999 and cos[0, 3] < 0.5


@pytest.mark.slow                      # real encoder on CPU, two dedup runs: about a minute
def test_reworded_documents_cluster_with_minhash_duplicates_and_a_new_crawl_joins_incrementally(spark, tmp_path):
    a_rows = [("council", COUNCIL, 10), ("recipe", RECIPE, 1), ("empty", "", 3)] + \
        [(f"a{i}", t, 30 + i) for i, t in enumerate(OTHERS[:3])]
    b_rows = [("council_reworded", COUNCIL_REWORDED, 5), ("recipe_copy", RECIPE.upper(), 600)] + \
        [(f"b{i}", t, 700 + i) for i, t in enumerate(OTHERS[3:])]
    a, b = documents(spark, a_rows, "A"), documents(spark, b_rows, "B")
    inc = str(tmp_path / "inc")
    tables.replace_where(a, JobConfig(home=inc), silver.DOCUMENTS, "crawl = 'A'")
    _dedup(spark, inc, "global")
    tables.replace_where(b, JobConfig(home=inc), silver.DOCUMENTS, "crawl = 'B'")
    sem = _dedup(spark, inc, "global")["semantic"]
    assert sem["crawls_embedded"] == ["B"] and sem["rows_out_embedded"] == len(b_rows)
    assert sem["version"] == "semdedup_minilm_0.95" and sem["dropped_beyond_minhash"] == 1
    got = _clusters(spark, "semdedup_minilm_0.95")
    # the reworded copy was fetched first (minute 5): it represents the pair; the upper-cased recipe is
    # MinHash's duplicate and stays one; the others are alone
    assert got["council"] == ("council_reworded", 2, False) and got["council_reworded"] == ("council_reworded", 2, True)
    assert got["recipe_copy"] == ("recipe", 2, False) and got["recipe"] == ("recipe", 2, True)
    assert all(v[1] == 1 for k, v in got.items() if k[0] in "ab" and k[1:].isdigit()) and got["empty"][1] == 1
    minhash = _clusters(spark, "minhash_5g_14x8")
    assert minhash["council"][1] == 1 and minhash["recipe_copy"][1] == 2
    vectors = {r.doc_id: r.vector for r in spark.table("silver.embeddings").collect()}
    assert vectors["empty"] is None and len(vectors["council"]) == 2 * 384
    # every document's cluster is asserted above: what a full run over both crawls must give too

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


def test_reworded_documents_join_one_cluster_with_the_minhash_duplicates(spark, home):
    rows = [("council", COUNCIL, 10), ("council_reworded", COUNCIL_REWORDED, 5), ("recipe", RECIPE, 1),
            ("recipe_copy", RECIPE.upper(), 20), ("empty", "", 3)] + [(f"other{i}", t, 30 + i) for i, t in enumerate(OTHERS)]
    tables.replace_where(documents(spark, rows, "C1"), JobConfig(home=home), silver.DOCUMENTS, "true")
    summary = _dedup(spark, home)
    sem = summary["semantic"]
    assert sem["version"] == "semdedup_minilm_0.95" and sem["rows_out_embedded"] == len(rows)
    got = _clusters(spark, "semdedup_minilm_0.95")
    assert got["council"] == ("council_reworded", 2, False) and got["council_reworded"] == ("council_reworded", 2, True)
    assert got["recipe_copy"] == ("recipe", 2, False)                   # the MinHash cluster is kept
    assert all(got[f"other{i}"][1] == 1 for i in range(len(OTHERS))) and got["empty"][1] == 1
    assert sem["dropped_beyond_minhash"] == 1 and sem["semantic_pairs"] >= 1
    minhash = _clusters(spark, "minhash_5g_14x8")
    assert minhash["council"][1] == 1 and minhash["recipe_copy"][1] == 2
    vectors = {r.doc_id: r.vector for r in spark.table("silver.embeddings").collect()}
    assert vectors["empty"] is None and len(vectors["council"]) == 2 * 384


@pytest.mark.slow                      # two lakehouses, embeddings and components twice: about a minute
def test_incremental_global_run_equals_a_full_run(spark, tmp_path):
    a = documents(spark, [("council", COUNCIL, 10), ("recipe", RECIPE, 1)] +
                  [(f"a{i}", t, 30 + i) for i, t in enumerate(OTHERS[:3])], "A")
    b = documents(spark, [("council_reworded", COUNCIL_REWORDED, 500), ("recipe_copy", RECIPE.upper(), 600)] +
                  [(f"b{i}", t, 700 + i) for i, t in enumerate(OTHERS[3:])], "B")
    inc, full = str(tmp_path / "inc"), str(tmp_path / "full")
    tables.replace_where(a, JobConfig(home=inc), silver.DOCUMENTS, "crawl = 'A'")
    _dedup(spark, inc, "global")
    tables.replace_where(b, JobConfig(home=inc), silver.DOCUMENTS, "crawl = 'B'")
    second = _dedup(spark, inc, "global")
    assert second["semantic"]["crawls_embedded"] == ["B"]
    got = _clusters(spark, "semdedup_minilm_0.95")
    for crawl, df in (("A", a), ("B", b)):
        tables.replace_where(df, JobConfig(home=full), silver.DOCUMENTS, f"crawl = '{crawl}'")
    _dedup(spark, full, "global")
    assert got == _clusters(spark, "semdedup_minilm_0.95")
    assert got["council_reworded"] == ("council", 2, False) and got["recipe_copy"] == ("recipe", 2, False)

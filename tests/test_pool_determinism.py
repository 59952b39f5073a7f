"""The real-pool benchmark on a small slice: the same pool, recipe and seed give the same corpus contents
and, on CPU, the same losses; counts reconcile from WARC records to the corpus."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")


def _corpus(spark, work, name: str) -> tuple[list[tuple[str, str]], dict]:
    from bench.pool import build
    from jobs.bronze import ingest_warc
    from jobs.gold import select_corpus
    from jobs.proxy import train_proxy
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse
    from jobs.silver import cluster_duplicates, compute_heuristics, compute_minhash, extract_documents

    manifest = build(work / name, limit=400)
    home = str(work / name / "lakehouse")
    ingested = ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=tuple(manifest["crawl_files"][:2])))
    extracted = extract_documents.run(spark, extract_documents.Config(home=home))
    compute_heuristics.run(spark, compute_heuristics.Config(home=home))
    compute_minhash.run(spark, compute_minhash.Config(home=home))
    cluster_duplicates.run(spark, cluster_duplicates.Config(home=home, scope="global"))
    selected = select_corpus.run(spark, select_corpus.Config(home=home, recipe="heuristics_dedup",
                                                             overrides=("duplicates.scope=global",)))
    register_lakehouse(spark, JobConfig(home=home))
    rows = sorted((r.doc_id, r.text) for r in spark.table("gold.corpus").collect())
    trained = train_proxy.run(spark, train_proxy.Config(home=home, recipe="heuristics_dedup", tokens=20_000,
                                                        heldout=tuple(f"{k}={v}" for k, v in manifest["evaluation_domains"].items()),
                                                        excluded=("wikitext2_test",), max_epochs=50, device="cpu"))
    return rows, {"ingested": ingested, "extracted": extracted, "selected": selected, "trained": trained,
                  "records": manifest["records"]}


def test_same_pool_recipe_and_seed_give_the_same_corpus_and_losses(spark, tmp_path, shared_data):
    first, a = _corpus(spark, tmp_path, "one")
    second, b = _corpus(spark, tmp_path, "two")
    assert first and first == second
    # counts reconcile: responses -> documents -> the recipe's funnel
    assert a["extracted"]["rows_in_responses"] == a["ingested"]["responses"]
    assert a["extracted"]["rows_out_documents"] + a["extracted"]["rows_skipped_non_html"] == a["ingested"]["responses"]
    assert a["selected"]["documents_in"] == a["extracted"]["rows_out_documents"]
    assert a["selected"]["documents_out"] == len(first)
    assert a["trained"]["eval_bpb"] == b["trained"]["eval_bpb"]
    assert a["trained"]["final_train_loss"] == b["trained"]["final_train_loss"]
    assert set(a["trained"]["final_heldout_bpb_by_domain"]) == {"newsgroups_test", "cleaneval_gold", "wikitext2_test"}

"""Neural scoring: the scoring core without Spark, the pandas-UDF runner through Spark on real pages, the
train-neural/score-neural jobs and a recipe over their scores."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jobs.classifiers import score_neural, train_neural  # noqa: E402
from jobs.runtime import tables  # noqa: E402
from jobs.runtime.config import JobConfig  # noqa: E402
from schemas import silver  # noqa: E402
from udfs import lm, neural  # noqa: E402

LONG = "A very long document about rivers and the towns along them. " * 4000      # ~240 kB


@pytest.fixture(scope="module")
def saved_lm(tmp_path_factory):
    """A tiny byte LM saved the way train-neural saves one (safetensors + config.json)."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("lm")
    cfg = lm.ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64)
    torch.manual_seed(3)
    model = lm.build_model(cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"format": "lakesift-byte-lm", "model": cfg.to_dict()}))
    return str(folder)


def test_core_keeps_input_order_and_handles_empty_and_long_texts(saved_lm):
    texts = ["short one", "", LONG, None, "a medium length text about the weather in spring", "   ", "x" * 300]
    opts = neural.RunnerOptions(batch_size=2, max_tokens=128, device="cpu")
    (scores,) = list(neural.score_batches(iter([texts]), "reference", saved_lm, None, opts))
    assert np.isnan(scores[[1, 3, 5]]).all() and np.isfinite(scores[[0, 2, 4, 6]]).all()
    one_by_one = [neural.scorer("reference", saved_lm, None, opts)([t])[0] for t in ("short one", LONG, "x" * 300)]
    assert scores[[0, 2, 6]] == pytest.approx(one_by_one, rel=1e-5)            # sorted batching, same order out
    model = neural.load_lm(saved_lm, "cpu")
    cut = LONG.encode()[:128].decode()
    assert scores[2] == pytest.approx(lm.bits_per_byte(model, [cut], "cpu")[0][0], rel=1e-5)
    learn = neural.scorer("learnability", saved_lm, saved_lm, opts)(["short one", LONG])
    assert learn == pytest.approx([0.0, 0.0], abs=1e-9)


def test_length_sorted_batches_cover_every_index_once():
    lengths = [5, 1, 9, 1, 3, 7, 2]
    batches = neural.length_sorted_batches(lengths, 3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert [lengths[i] for i in np.concatenate(batches)] == sorted(lengths)


def test_cuda_without_a_gpu_fails_clearly(saved_lm, spark, home):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    opts = neural.RunnerOptions(device="cuda")
    with pytest.raises(RuntimeError, match="device=cuda was asked for"):
        neural.scorer("reference", saved_lm, None, opts)(["some text"])
    with pytest.raises(ValueError):
        neural.RunnerOptions(batch_size=0)


def test_encoder_loads_only_safetensors_and_checks_the_pinned_hash(tmp_path):
    path = neural.default_encoder_path()
    assert neural.file_sha256(f"{path}/model.safetensors") == neural.MINILM_SHA256
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(RuntimeError, match="no model.safetensors"):
        neural.load_encoder(str(tmp_path), "cpu")
    vectors = neural.embed(["The river flows to the sea.", "", "Rivers flow into seas."], path, neural.RunnerOptions(device="cpu"))
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[2] > 0.6 > vectors[0] @ vectors[1]


# ------------------------------------------------------------------------------ through Spark and MLflow

@pytest.fixture(scope="module")
def real_lakehouse(spark, shared_data, tmp_path_factory):
    """silver.documents holding 120 real pages (extracted), one empty and one very long document."""
    from udfs.extract import extract_html

    home = str(tmp_path_factory.mktemp("neural-lakehouse"))
    folder = shared_data / "html" / "trafilatura-eval"
    pages = list(json.loads((folder / "evaldata.json").read_text()).values())[:120]
    texts = [extract_html(gzip.decompress((folder / "html" / (p["file"] + ".gz")).read_bytes())).text for p in pages]
    texts += ["", LONG]
    rows = [{"doc_id": f"<urn:uuid:{i:08d}>", "crawl": "REAL", "url": f"https://example.org/{i}", "text": t,
             "char_count": len(t), "word_count": len(t.split()), "extractor": "resiliparse", "source_file": "pages",
             "source_offset": i} for i, t in enumerate(texts)]
    df = spark.createDataFrame(rows, silver.DOCUMENTS.schema)
    tables.replace_where(df, JobConfig(home=home), silver.DOCUMENTS, "crawl = 'REAL'")
    return home, dict((r["doc_id"], r["text"]) for r in rows)


def _scores(spark, home, scorer, model) -> dict:
    cfg = JobConfig(home=home)
    df = tables.read_table(spark, cfg, silver.SIGNALS_NEURAL).where(f"scorer = '{scorer}' AND model = '{model}'")
    return {r["doc_id"]: r["score"] for r in df.collect()}


@pytest.mark.slow
def test_reference_and_learnability_scores_through_spark(spark, real_lakehouse, shared_data):
    home, docs = real_lakehouse
    wiki = str(shared_data / "text" / "wikitext-2_valid.txt")
    ref = train_neural.run(spark, train_neural.Config(home=home, kind="reference", name="ref_lm", positives=(wiki,),
                                                      tokens=60_000, max_examples=2000, device="cpu"))
    learner = train_neural.run(spark, train_neural.Config(home=home, kind="reference", name="learner_lm",
                                                          positives=("silver.documents",), tokens=30_000, device="cpu"))
    assert ref["heldout_bpb"] < 8 and learner["version"] == "1"
    cfg = score_neural.Config(home=home, scorer="reference", model="models:/ref_lm@champion", max_tokens=512, device="cpu")
    first = score_neural.run(spark, cfg)
    scores = _scores(spark, home, "reference", "ref_lm")
    blank = sum(1 for t in docs.values() if not t.strip())
    assert first["rows_out_scores"] == len(docs) == len(scores) and first["rows_out_without_text"] == blank >= 1
    assert score_neural.run(spark, cfg)["rows_out_scores"] == len(docs)             # replaces, never appends
    assert _scores(spark, home, "reference", "ref_lm") == scores                     # deterministic
    # every score belongs to its own document: the plain core on the same texts, in a different order
    from jobs.runtime.tracking import download_model

    folder = download_model(JobConfig(home=home), "models:/ref_lm@champion")[0]
    ids = sorted(docs, reverse=True)
    opts = neural.RunnerOptions(batch_size=16, max_tokens=512, device="cpu")
    (expected,) = neural.score_batches(iter([[docs[i] for i in ids]]), "reference", folder, None, opts)
    for doc_id, value in zip(ids, expected):
        if docs[doc_id].strip():
            assert scores[doc_id] == pytest.approx(value, rel=1e-4)
        else:
            assert scores[doc_id] is None and np.isnan(value)
    learn = score_neural.run(spark, score_neural.Config(home=home, scorer="learnability", model="models:/learner_lm@champion",
                                                        reference="models:/ref_lm@champion", max_tokens=512, device="cpu"))
    assert learn["model"] == "learner_lm/ref_lm" and learn["model_version"] == "1/1"
    learner_scores = neural.scorer("reference", download_model(JobConfig(home=home), "models:/learner_lm/1")[0], None,
                                   neural.RunnerOptions(max_tokens=512, device="cpu"))
    some = [i for i in ids if docs[i].strip()][:5]
    got = _scores(spark, home, "learnability", "learner_lm/ref_lm")
    want = learner_scores([docs[i] for i in some]) - np.array([scores[i] for i in some])
    assert [got[i] for i in some] == pytest.approx(want.tolist(), rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_embedding_classifier_is_trained_compared_and_selects(spark, real_lakehouse, shared_data, tmp_path):
    from jobs.gold import select_corpus

    home, docs = real_lakehouse
    wiki = str(shared_data / "text" / "wikitext-2_valid.txt")
    trained = train_neural.run(spark, train_neural.Config(home=home, kind="embedding", name="emb_q", positives=(wiki,),
                                                          max_examples=120, min_words=20, device="cpu"))
    assert trained["roc_auc"] > 0.9 and 0.5 < trained["fasttext_roc_auc"] <= 1.0
    out = score_neural.run(spark, score_neural.Config(home=home, scorer="embedding", model="models:/emb_q@champion", device="cpu"))
    scores = _scores(spark, home, "embedding", "emb_q")
    blank = sum(1 for t in docs.values() if not t.strip())
    assert out["rows_out_scores"] == len(docs) and out["rows_out_without_text"] == blank
    values = np.array([v for v in scores.values() if v is not None])
    assert ((values >= 0) & (values <= 1)).all() and values.std() > 0.01
    recipe = tmp_path / "neural_top.yaml"
    recipe.write_text("name: neural_top\nsignals:\n  neural: {scorer: embedding, model: emb_q}\npredicates:\n"
                      "  - name: has_text\n    where: \"length(trim(d.text)) > 0\"\n"
                      "  - name: embedding_top_half\n    top_percent: 50\n    score: n.score\n")
    s = select_corpus.run(spark, select_corpus.Config(home=home, recipe=str(recipe)))
    assert s["documents_in"] == len(docs) and abs(s["documents_out"] - (len(docs) - blank) / 2) <= 2

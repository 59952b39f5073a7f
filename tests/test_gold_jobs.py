"""Gold and classifier jobs on a local SparkSession: select semantics, recipe validation, registry, export."""
from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone

import pytest

from jobs.classifiers import classify_quality, train_quality
from jobs.gold import export_shards, select_corpus
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import client_and_experiment
from schemas import silver
from udfs import heuristics as H

pytestmark = pytest.mark.filterwarnings("ignore")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def write(spark, home, contract, rows, condition="true"):
    df = spark.createDataFrame(rows, contract.schema)
    tables.replace_where(df, JobConfig(home=home), contract, condition)


def doc(doc_id, text, language="en", score=0.9):
    return (doc_id, "C1", f"https://e.example/{doc_id}", "e.example", T0, None, text, language, score, len(text),
            len(text.split()), "utf-8", "test", None, "f", 0, False)


def heur(doc_id, text):
    stats = H.heuristics(text, f"https://e.example/{doc_id}")
    return (doc_id, "C1", None, tuple(stats[name] for name, _ in H.FIELDS))


GOOD = "This is a perfectly ordinary English sentence about the weather and the sea. " * 8


@pytest.fixture
def lake(spark, home):
    docs = [doc(f"d{i}", GOOD + f" Variant {i}.") for i in range(1, 9)]
    docs.append(doc("d9", "Ein deutscher Text über das Wetter und das Meer, lang genug für alles. " * 8, language="de"))
    docs.append(doc("d10", GOOD, language=None, score=None))
    write(spark, home, silver.DOCUMENTS, docs)
    write(spark, home, silver.SIGNALS_HEURISTIC, [heur(d[0], d[6]) for d in docs if d[0] != "d8"])   # d8: no heuristics
    write(spark, home, silver.SIGNALS_QUALITY, [(f"d{i}", "C1", "m", "1", i / 10) for i in range(1, 8)])  # d8+: none
    return home


def recipe_file(tmp_path, predicates, signals=None):
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"name": "test_recipe", "signals": signals or {}, "predicates": predicates}))
    return str(path)


def test_select_drop_reasons_follow_predicate_order_with_explicit_missing_signals(spark, lake, tmp_path):
    path = recipe_file(tmp_path, [
        {"name": "english", "where": "d.language = 'en'"},
        {"name": "long_enough", "where": "h.word_count >= 50"},
        {"name": "top_half", "top_percent": 50, "score": "q.score"},
    ], {"quality": {"model": "m"}})
    s = select_corpus.run(spark, select_corpus.Config(home=lake, recipe=path))
    drops = {(r.step, r.drop_reason): r.documents for r in spark.table("gold.rejections").collect()}
    # d9 German, d10 NULL language (a NULL predicate is a failure, not a keep); d8 has no heuristics row;
    # d1..d7 have scores 0.1..0.7: the top half keeps score >= the median 0.4
    assert drops == {(1, "english"): 2, (2, "missing_heuristics"): 1, (3, "top_half"): 3}
    assert s["thresholds"] == {"top_half": pytest.approx(0.4)}
    kept = {r.doc_id: r for r in spark.table("gold.corpus").collect()}
    assert sorted(kept) == ["d4", "d5", "d6", "d7"]
    assert kept["d7"].signals == {"d.language": "en", "h.word_count": str(kept["d7"].signals["h.word_count"]), "q.score": "0.7"}
    assert kept["d7"].recipe == "test_recipe" and kept["d7"].estimated_tokens == len(GOOD + " Variant 7.") // 4
    assert [n for _, n, _, _ in s["funnel"]] == ["english", "long_enough", "top_half"]
    assert [d for _, _, d, _ in s["funnel"]] == [8, 7, 4]


def test_missing_family_is_a_drop_reason_even_when_every_row_is_missing(spark, lake, tmp_path):
    path = recipe_file(tmp_path, [{"name": "representative", "where": "x.is_representative"}])
    select_corpus.run(spark, select_corpus.Config(home=lake, recipe=path))
    assert [(r.drop_reason, r.documents) for r in spark.table("gold.rejections").collect()] == [("missing_duplicates", 10)]
    assert spark.table("gold.corpus").where("recipe = 'test_recipe'").count() == 0


def test_same_recipe_and_inputs_give_the_same_corpus(spark, lake):
    first = select_corpus.run(spark, select_corpus.Config(home=lake, recipe="raw"))
    rows = sorted((r.doc_id, r.text, r.recipe_fingerprint) for r in spark.table("gold.corpus").collect())
    second = select_corpus.run(spark, select_corpus.Config(home=lake, recipe="raw"))
    assert sorted((r.doc_id, r.text, r.recipe_fingerprint) for r in spark.table("gold.corpus").collect()) == rows
    assert second["corpus_version"] == first["corpus_version"] + 1 and len(rows) == 10


def test_train_register_classify_and_export(spark, lake, tmp_path):
    reference = tmp_path / "reference.txt"
    reference.write_text("\n\n".join(
        f"Encyclopedic paragraph number {i} describes the history of astronomy and careful measurement of the sky."
        for i in range(60)))
    labels = tmp_path / "labels.jsonl"              # human judgments: careful prose good, link lists bad
    labels.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in
                                [(f"A careful essay, part {i}, explains how astronomers measured the distance to the sun.", 1)
                                 for i in range(12)] + [(f"click here buy now {i} | home | login | cart", 0) for i in range(12)]))
    trained = train_quality.run(spark, train_quality.Config(home=lake, name="tiny_quality", positives=(str(reference),),
                                                             dim=16, bucket=10_000, min_words=5, labels=str(labels)))
    client, _ = client_and_experiment(JobConfig(home=lake))
    version = client.get_model_version_by_alias("tiny_quality", "champion")
    assert str(version.version) == trained["version"] and trained["examples"] > 0 and 0 <= trained["roc_auc"] <= 1
    assert trained["trained_on"] == "labels" and trained["labels_cv_roc_auc"] > 0.9
    run = client.get_run(trained["run_id"])
    assert "holdout_roc_auc" in run.data.metrics and run.data.params["input.negatives.0"].startswith("table:silver.documents@v")
    assert run.data.params["labels.rows"] == "24" and "weight.fasttext_logit" in run.data.metrics

    scored = classify_quality.run(spark, classify_quality.Config(home=lake, model="models:/tiny_quality@champion"))
    assert scored["rows_out_scores"] == 10 and scored["model_version"] == trained["version"]
    assert scored["components"] == ["fasttext", "reference_lm", "heuristics", "length"]
    rows = {r.doc_id: r.score for r in spark.table("silver.signals_quality").where("model = 'tiny_quality'").collect()}
    from jobs.classifiers.classify_quality import resolve_model
    from udfs.quality import QualityModel

    resolved = resolve_model(classify_quality.Config(home=lake, model="models:/tiny_quality@champion"))
    assert resolved.kind == "combined"
    model = QualityModel(resolved.path)
    texts = {r.doc_id: r.text for r in spark.table("silver.documents").collect()}
    expected = dict(zip(texts, model.score(list(texts.values()))))
    assert all(rows[k] == pytest.approx(expected[k], abs=1e-9) for k in rows)
    assert all(0 <= v <= 1 for v in rows.values())

    select_corpus.run(spark, select_corpus.Config(home=lake, recipe="raw"))
    out = str(tmp_path / "export")
    exported = export_shards.run(spark, export_shards.Config(home=lake, recipe="raw", shards=3, output=out))
    manifest = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert manifest["documents"] == exported["documents"] == 10 and manifest["table_version"] == exported["table_version"]
    assert sum(s["documents"] for s in manifest["shards"]) == 10
    seen = []
    for shard in manifest["shards"]:
        if shard["file"]:
            with gzip.open(os.path.join(out, shard["file"]), "rt") as fh:
                lines = [json.loads(line) for line in fh]
            assert len(lines) == shard["documents"] and [x["doc_id"] for x in lines] == sorted(x["doc_id"] for x in lines)
            seen += [x["doc_id"] for x in lines]
    assert sorted(seen) == sorted(texts)
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out) if f.startswith("shard-")}
    export_shards.run(spark, export_shards.Config(home=lake, recipe="raw", shards=3, output=out))
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out) if f.startswith("shard-")} == before


@pytest.mark.slow                     # MiniLM on CPU: about a minute
def test_quality_model_with_the_embedding_component(spark, lake, tmp_path):
    """The optional MiniLM component: trained with the others, stored as safetensors, applied by classify."""
    pytest.importorskip("torch")
    reference = tmp_path / "reference.txt"
    reference.write_text("\n\n".join(
        f"An encyclopedia entry, number {i}, on the orbit of the moon and the measurement of tides." for i in range(30)))
    trained = train_quality.run(spark, train_quality.Config(home=lake, name="embedded_quality", positives=(str(reference),),
                                                             components=("embedding", "length"), min_words=5))
    assert trained["components"] == ["embedding", "length"] and trained["trained_on"] == "reference_vs_web"
    scored = classify_quality.run(spark, classify_quality.Config(home=lake, model="models:/embedded_quality@champion"))
    assert scored["components"] == ["embedding", "length"] and scored["rows_out_scores"] == 10
    from jobs.classifiers.classify_quality import resolve_model
    from udfs.quality import QualityModel

    model = QualityModel(resolve_model(classify_quality.Config(home=lake, model="models:/embedded_quality@champion")).path)
    names, x = model.features(["An entry on the orbit of the moon and the tides.", "buy now cheap cheap"])
    assert names == ["log_chars", "log_words", "embedding_logit"] and x[0, 2] > x[1, 2]

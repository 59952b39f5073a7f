"""Quality classification, decontamination and recipe parsing, without Spark."""
from __future__ import annotations

import gzip
import json
import math
import random
import zipfile

import numpy as np
import pytest

from jobs.classifiers import sources
from jobs.gold import recipe as R
from udfs import fasttext as ft
from udfs.decontam import build_index, contamination, item_texts

VOCAB = [f"w{i}" for i in range(200)]


def synthetic(n=1000, seed=0):
    rng = random.Random(seed)
    pos = [" ".join(rng.choice(VOCAB[:100]) for _ in range(12)) for _ in range(n)]
    neg = [" ".join(rng.choice(VOCAB[100:]) for _ in range(12)) for _ in range(n)]
    return pos, neg


@pytest.fixture(scope="module")
def unigram_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ft") / "m.bin")
    pos, neg = synthetic()
    ft.train(pos, neg, ft.TrainParams(word_ngrams=1, dim=8, lr=0.05), path)
    return ft.load(path)


def softmax_by_hand(model, text):
    """P(labels) from the model's own matrices: softmax(W_out . mean of the tokens' input rows)."""
    ids = [i for i in (model.get_word_id(w) for w in ft.one_line(text).split() + ["</s>"]) if i >= 0]
    logits = model.get_output_matrix() @ model.get_input_matrix()[ids].mean(axis=0)
    p = np.exp(logits - logits.max())
    return dict(zip(model.labels, p / p.sum()))


def test_batch_probabilities_are_right(unigram_model):
    texts = ["w1 w2 w3", "w150 w160", "w5 w120 w130", "zzz unknown words", "w7 w8 w9 w10 w150"]
    ours = ft.positive_probability(unigram_model, texts)
    for text, p in zip(texts, ours):
        one_example = dict((lab, prob) for prob, lab in unigram_model.f.predict(ft.one_line(text) + "\n", -1, 0.0, "strict"))
        assert math.isclose(p, one_example[ft.POSITIVE], abs_tol=5e-5)      # fastText adds 1e-5 per label
        assert math.isclose(p, softmax_by_hand(unigram_model, text)[ft.POSITIVE], abs_tol=1e-4)   # fastText adds 1e-5
    assert ours[0] > 0.9 and ours[1] < 0.1
    assert np.isnan(ft.positive_probability(unigram_model, ["", None, "   "])).all()


def test_training_is_deterministic(tmp_path):
    pos, neg = synthetic(300, seed=4)
    params = ft.TrainParams(word_ngrams=2, dim=16, lr=0.05, bucket=10_000, seed=3)
    scores = []
    for i in range(2):
        path = str(tmp_path / f"m{i}.bin")
        ft.train(pos, neg, params, path)
        scores.append(ft.positive_probability(ft.load(path), pos[:50] + neg[:50]))
    assert np.array_equal(scores[0], scores[1])


def test_training_needs_both_classes(tmp_path):
    with pytest.raises(ValueError, match="both classes"):
        ft.train(["a b c"], [], ft.TrainParams(), str(tmp_path / "m.bin"))


def test_roc_auc():
    assert ft.roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert ft.roc_auc(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert ft.roc_auc(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(bool)
    s = np.round(rng.random(500) + 0.3 * y, 1)          # many ties
    assert math.isclose(ft.roc_auc(y, s), roc_auc_score(y, s), abs_tol=1e-12)


def test_text_sources(tmp_path):
    (tmp_path / "a.txt").write_text("first block has enough words in it to count\n\nshort\n\nsecond block also has enough words here\n")
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as z:
        z.writestr("x/one.txt", "a file inside the archive with plenty of words to keep it")
        z.writestr("x/two.jsonl", json.dumps({"text": "json inside a zip archive with enough words too"}) + "\nnot json\n")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "compressed json lines document with enough words to keep"}) + "\n")
        fh.write(json.dumps({"nope": 1}) + "\n")
    docs = list(sources.file_documents(str(tmp_path / "a.txt"), "block", min_words=5))
    assert docs == ["first block has enough words in it to count", "second block also has enough words here"]
    assert len(list(sources.file_documents(str(tmp_path / "a.txt"), "file", min_words=5))) == 1
    assert len(list(sources.file_documents(str(tmp_path / "b.zip"), "block", min_words=5))) == 2
    assert list(sources.file_documents(str(tmp_path / "c.jsonl.gz"), "block", min_words=5)) == [
        "compressed json lines document with enough words to keep"]
    docs, infos = sources.read_files([str(tmp_path)], "block", 5, limit=100, seed=0)
    assert len(docs) == 5 and "a.txt@" in infos[0].detail
    assert sources.is_table("silver.documents") and not sources.is_table(str(tmp_path / "a.txt"))
    with pytest.raises(FileNotFoundError):
        sources.expand(str(tmp_path / "missing.txt"))


def test_reference_text_is_separated_from_spam_pages(shared_data, tmp_path):
    """Trained on ../shared/data reference text against the 990 real pages, the classifier scores held-out
    reference text above the spam pages of warcfile.warc.gz (CC-MAIN-2020-34). Spam pages are judged when they
    have the 20 words the training pages needed: a shorter text (a line of Chinese is one fastText token it
    never saw) is the word-count rule's to drop, as the heuristics recipes do before the classifier."""
    from udfs.extract import extract_html
    from udfs.warc import ReadOptions, read_archive

    positives, _ = sources.read_files([str(shared_data / "text" / n) for n in
                                       ("wikitext-2_valid.txt", "nltk_inaugural.zip", "nltk_state_union.zip")],
                                      "block", 20, limit=4000, seed=0)
    pages = json.loads((shared_data / "html" / "trafilatura-eval" / "evaldata.json").read_text())
    negatives = [extract_html(gzip.decompress((shared_data / "html" / "trafilatura-eval" / "html" / (it["file"] + ".gz"))
                                              .read_bytes())).text for it in pages.values()]
    held_out = positives[:200]
    ft.train(positives[200:], [n for n in negatives if len(n.split()) >= 20], ft.TrainParams(dim=32, bucket=100_000),
             str(tmp_path / "q.bin"))
    model = ft.load(str(tmp_path / "q.bin"))
    spam = [extract_html(r["payload"], r["declared_charset"]).text
            for r in read_archive(str(shared_data / "warc" / "warcfile.warc.gz"), ReadOptions()) if r["kind"] == "response"]
    spam = [s for s in spam if len(s.split()) >= 20]
    assert len(spam) >= 10
    ref_scores, spam_scores = ft.positive_probability(model, held_out), ft.positive_probability(model, spam)
    auc = ft.roc_auc(np.array([True] * len(ref_scores) + [False] * len(spam_scores)), np.concatenate([ref_scores, spam_scores]))
    print(f"\nreference {np.nanmean(ref_scores):.3f} vs spam {np.nanmean(spam_scores):.3f}; ROC-AUC {auc:.3f}")
    assert auc > 0.95 and np.nanmax(spam_scores) < np.nanmedian(ref_scores)


# --------------------------------------------------------------------------------------- decontamination

def test_contamination_flags_eval_passages_only(tmp_path):
    arc = [{"query": "Question: Which gas do plants take in from the air to make their food during photosynthesis?",
            "choices": ["oxygen", "carbon dioxide", "nitrogen"], "gold": 1},
           {"query": "Short one?", "choices": ["a"], "gold": 0}]
    lambada = [{"context": "the old lighthouse keeper climbed the narrow stairs every evening to light the great lamp",
                "continuation": "again"}]
    (tmp_path / "arc.jsonl").write_text("\n".join(json.dumps(x) for x in arc) + "\nnot json at all\n")
    (tmp_path / "lambada.jsonl").write_text("\n".join(json.dumps(x) for x in lambada) + "\n")
    index = build_index([str(tmp_path)], ngram=13)
    assert index.names == ["arc", "lambada"] and index.items == {"arc": 2, "lambada": 1} and index.skipped == {"arc": 1, "lambada": 0}
    docs = [
        "Quiz night! Which gas do plants take in from the air to make their food during photosynthesis? Carbon dioxide, of course.",
        "Every evening the old lighthouse keeper climbed the narrow stairs every evening to light the great lamp again, said the guide.",
        "Plants need light, water and air to grow; this page is about gardening and has nothing to do with any benchmark.",
        "Short one? A",
    ]
    hits, masks = contamination(docs, index)
    assert hits[0] > 0 and masks[0] == 1 and hits[1] > 0 and masks[1] == 2
    assert hits[2] == 0 and hits[3] == 0          # items shorter than 13 words protect nothing
    assert index.version.startswith("decon_13g_")


def test_eval_item_formats():
    assert item_texts({"query": "Q", "choices": ["a", "b"], "gold": 1}) == ["Q b"]
    assert item_texts({"context": "C", "continuation": "x"}) == ["C x"]
    assert item_texts({"context_options": ["A", "B"], "continuation": "y"}) == ["A y", "B y"]
    assert item_texts({"ctx": "C", "endings": ["e0", "e1"], "label": 1}) == ["C e1"]


# ---------------------------------------------------------------------------------------------- recipes

def test_shipped_recipes_parse():
    assert R.shipped_recipes() == ["dclm_like", "heuristics", "heuristics_dedup", "raw", "semdedup"]
    dclm = R.load("dclm_like")
    assert dclm.predicates[-1].top_percent == 10 and dclm.families() == ["duplicates", "heuristics", "paragraphs", "quality"]
    assert R.load("semdedup").signals["duplicates"]["version"] == "semdedup_minilm_0.95"
    assert R.load("heuristics").fingerprint() != R.load("heuristics_dedup").fingerprint()
    assert R.load("dclm_like", {"quality.model": "other"}).signals["quality"]["model"] == "other"


@pytest.mark.parametrize("recipe,message", [
    ({"name": "r", "predicates": [{"name": "a", "where": "true"}, {"name": "a", "where": "true"}]}, "duplicate predicate name 'a'"),
    ({"name": "r", "predicates": [{"name": "a", "where": "z.col > 1"}]}, "predicate a: unknown table alias"),
    ({"name": "r", "predicates": [{"name": "a", "top_percent": 10}]}, "predicate a: top_percent must be in"),
    ({"name": "r", "predicates": [{"name": "a", "where": "true", "top_percent": 5, "score": "q.score"}]}, "predicate a: give either"),
    ({"name": "r", "predicates": [{"name": "missing_x", "where": "true"}]}, "reserved"),
    ({"name": "r", "predicates": []}, "non-empty list of predicates"),
    ({"name": "bad name", "predicates": [{"name": "a", "where": "true"}]}, "invalid recipe name"),
    ({"name": "r", "signals": {"quality": {"modle": "x"}}, "predicates": [{"name": "a", "where": "true"}]}, "unknown option"),
])
def test_invalid_recipes_are_rejected(recipe, message):
    with pytest.raises(R.RecipeError, match=message):
        R.parse(recipe, {})


def test_drop_reason_sql_orders_missing_families_before_their_first_predicate():
    recipe = R.parse({"name": "r", "predicates": [
        {"name": "long", "where": "d.word_count > 10"},
        {"name": "good", "where": "h.alpha_word_frac > 0.8 AND d.title <> 'x.y'"},
        {"name": "top", "top_percent": 50, "score": "q.score"}]}, {})
    assert [(s, r) for s, r, _ in R.steps(recipe)] == [(1, "long"), (2, "missing_heuristics"), (2, "good"),
                                                       (3, "missing_quality"), (3, "top")]
    reason, _ = R.drop_reason_sql(recipe, {"top": 0.25})
    assert "q.score) >= 0.25" in reason and "{threshold" not in reason

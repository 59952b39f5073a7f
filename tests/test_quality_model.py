"""The combined quality model without Spark: the reference n-gram LM, the combiner, label files."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from udfs import quality as Q
from udfs.reference_lm import NgramLM

WORDS = [f"w{i}" for i in range(60)]


def sentences(n, seed, vocab=WORDS):
    rng = random.Random(seed)
    # a Markov chain: each word prefers a few successors, so bigram and trigram statistics carry signal
    out = []
    for _ in range(n):
        w = rng.choice(vocab)
        words = [w]
        for _ in range(rng.randint(8, 20)):
            i = vocab.index(w)
            w = vocab[(i + rng.choice((1, 2, 3, 7))) % len(vocab)]
            words.append(w)
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def lm():
    return NgramLM.train(sentences(400, 0))


def test_ngram_probabilities_sum_to_one(lm):
    """For contexts seen and unseen, P(w | context) over the whole vocabulary plus the unseen-word mass is 1:
    the Kneser-Ney interpolation neither leaks nor invents probability."""
    vocab = WORDS
    for context in ("w3 w4", "w10 w17", "w59 zzz", "never seen", ""):
        texts = [f"{context} {w}".strip() for w in vocab]
        bits = lm.bits_per_word(texts)
        n = np.array([len(t.split()) for t in texts])
        ctx_bits = lm.bits_per_word([context])[0] * len(context.split()) if context else 0.0
        p_last = 2.0 ** -(bits * n - ctx_bits)
        unseen = 2.0 ** -(lm.bits_per_word([f"{context} unseenword".strip()])[0] * (len(context.split()) + 1) - ctx_bits)
        # one unseen word stands for the whole unseen mass
        assert math.isclose(p_last.sum() + unseen, 1.0, rel_tol=1e-6), context


def test_ngram_model_prefers_its_own_language_and_round_trips(lm, tmp_path):
    own = sentences(50, 1)
    other = [" ".join(reversed(s.split())) for s in own]            # same words, wrong order
    assert np.mean(lm.bits_per_word(own)) < np.mean(lm.bits_per_word(other)) - 1.0
    lm.save(str(tmp_path / "m"))
    again = NgramLM.load(str(tmp_path / "m"))
    assert np.array_equal(again.bits_per_word(own), lm.bits_per_word(own))
    assert np.array_equal(NgramLM.train(sentences(400, 0)).bits_per_word(own), lm.bits_per_word(own))   # deterministic
    assert np.isnan(lm.bits_per_word(["", "  ... !!"])).all()
    (tmp_path / "m" / "ngram.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="no lakesift n-gram"):
        NgramLM.load(str(tmp_path / "m"))


def test_logistic_fit_matches_the_optimum():
    """Newton's method reaches the penalised optimum: the gradient vanishes there."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x @ np.array([2.0, -1.0, 0.0, 0.5]) + rng.normal(size=300) > 0).astype(float)
    c = 0.3
    w, b = Q.fit_logistic(x, y, c)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    assert np.abs(x.T @ (p - y) + w / c).max() < 1e-8 and abs((p - y).sum()) < 1e-8
    assert w[0] > 1 and w[1] < -0.5


def test_cross_validation_is_honest():
    """Features that are pure noise score about 0.5 out of fold, though a fit on all rows looks better."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 15))
    y = np.array([0, 1] * 60)
    names = [f"f{i}" for i in range(15)]
    oof = Q.cross_validated_scores(x, y, names, seed=0, c=10.0)
    in_sample = Q.fit(x, y, names, "labels", c=10.0).predict(x)
    assert Q.roc_auc(y, oof) < 0.65 < Q.roc_auc(y, in_sample)
    signal = x.copy()
    signal[:, 0] += 2.0 * y
    assert Q.roc_auc(y, Q.cross_validated_scores(signal, y, names, seed=0)) > 0.85
    lo, hi = Q.bootstrap_interval(y, oof, rounds=300)
    assert lo < Q.roc_auc(y, oof) < hi


def test_combiner_standardises_and_tolerates_missing_values():
    x = np.array([[1.0, 100.0], [2.0, np.nan], [3.0, 300.0], [4.0, 400.0]] * 10)
    y = np.array([0, 0, 1, 1] * 10)
    model = Q.fit(x, y, ["a", "b"], "labels", c=1.0)
    p = model.predict(x)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert p[2] > 0.5 > p[0]
    again = Q.Combiner.from_json(json.loads(json.dumps(model.to_json())))
    assert np.array_equal(again.predict(x), p)


@pytest.mark.parametrize("lines,message", [
    ([{"text": "a", "label": 1}] * 10 + [{"text": "b", "label": 0}] * 9, "19 labelled texts; at least 20"),
    ([{"text": "a", "label": 1}] * 30, "every label is 1; both classes"),
    ([{"text": "a", "label": 1}] * 15 + [{"text": "b", "label": 0}] * 15 + [{"text": "c"}], "line 31: missing label"),
    ([{"label": 1}] + [{"text": "b", "label": 0}] * 25, "line 1: missing text"),
    ([{"text": "a", "label": 2}] + [{"text": "b", "label": i % 2} for i in range(25)], "line 1: label 2 is not 0 or 1"),
    ([{"text": "a", "label": "yes"}] + [{"text": "b", "label": i % 2} for i in range(25)], "label 'yes' is not 0 or 1"),
    ([{"text": "a", "label": True}] + [{"text": "b", "label": i % 2} for i in range(25)], "label True is not 0 or 1"),
    ([{"text": 5, "label": 1}] + [{"text": "b", "label": i % 2} for i in range(25)], "line 1: text is not a string"),
])
def test_bad_label_files_are_refused(tmp_path, lines, message):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with pytest.raises(ValueError, match=message):
        Q.read_labels(str(path))


def test_label_files_accept_numbers_and_skip_blank_lines(tmp_path):
    path = tmp_path / "labels.jsonl"
    rows = [{"text": f"t{i}", "label": [0, 1.0][i % 2]} for i in range(24)]
    path.write_text("\n".join(json.dumps(x) for x in rows) + "\n\n")
    texts, y = Q.read_labels(str(path))
    assert texts[:2] == ["t0", "t1"] and y.tolist() == [0, 1] * 12
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        Q.read_labels(str(tmp_path / "broken.jsonl"))
    with pytest.raises(ValueError, match="cannot read labels file"):
        Q.read_labels(str(tmp_path / "missing.jsonl"))


def test_components_are_validated():
    assert Q.validate_components(("length", "length", "heuristics")) == ("length", "heuristics")
    with pytest.raises(ValueError, match="unknown quality component"):
        Q.validate_components(("fasttext", "vibes"))


def test_human_labels_are_predicted_from_reference_text(shared_data):
    """On DCLM's human judgments (the dev labels in ../shared/data), the reference-LM, heuristic and length
    features combined rank good pages above bad ones out of fold better than length alone."""
    from jobs.classifiers import sources

    texts, y = Q.read_labels(str(shared_data / "quality-labels" / "dclm-human-dev.jsonl"))
    reference, _ = sources.read_files([str(shared_data / "text" / "wikitext-2_valid.txt")], "block", 10, 10**9, 0)
    lm = NgramLM.train(reference)
    web = NgramLM.train(sources.read_files([str(shared_data / "text" / "tinyshakespeare_input.txt")], "block", 10, 10**9, 0)[0])
    names, x = Q.features(texts, ("reference_lm", "heuristics", "length"), reference_lm=lm, web_lm=web)
    combined = Q.roc_auc(y, Q.cross_validated_scores(x, y, names, seed=0))
    length = Q.roc_auc(y, x[:, names.index("log_chars")])
    print(f"\ncombined {combined:.3f} vs length {length:.3f}")
    assert combined > length + 0.04

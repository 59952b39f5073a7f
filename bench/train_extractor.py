"""Train the block model of lakesift's default extractor (udfs/blocks.py) on the development page sets.

    python -m bench.train_extractor              # leave-one-set-out figures, then udfs/models/blocks_v1.json

Labels per block (a block is one text block of the page, udfs.blocks.segment):
- gold-text sets: a block of 4+ tokens is main content when at least half of its word 4-gram shingles are in
  the gold text; a shorter block when its tokens occur, in order and contiguous, in the gold text.
- trafilatura-eval: a block that contains a `with` snippet, or lies inside one, is main content; one that
  contains or lies inside a `without` snippet is not; other blocks are unlabelled (weight 0).
Weights: every page counts the same (its labelled blocks' weights sum to 1, by tokens + 1).

Model: scikit-learn's HistGradientBoostingClassifier (training only; inference is udfs.blocks.TreeModel in
numpy), exported tree by tree to JSON. Before the final fit, each set is scored by a model trained on the
other five (leave one set out), at several keep thresholds; the shipped threshold is the one with the best
mean held-out F1 over the sets. The JSON records those figures, the parameters, the library versions and
the sha256 of every data file it was trained on; bench/results/train_extractor.json has the held-out table
and, per set, the share of the main-content weight that lies inside elements BOILERPLATE_SELECTORS names
(why `in_clean` is a feature and not a rule).
"""
from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

import numpy as np

from bench.common import CLEANEVAL_SETS, SHARED, TRAFILATURA_EVAL, cleaneval_pages, eval_pages, report
from bench.extraction_quality import _TOKEN, _WS, shingle_scores, shingles, snippet_scores
from udfs import blocks as B
from udfs.extract import decode_html

PARAMS = {"max_iter": 100, "learning_rate": 0.1, "max_depth": 3, "max_leaf_nodes": 8, "min_samples_leaf": 40,
          "l2_regularization": 1.0, "random_state": 0}
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def page_data(raw: bytes):
    from resiliparse.parse.html import HTMLTree

    html, _ = decode_html(raw, None)
    tree = HTMLTree.parse(html)
    blocks = B.page_blocks(tree)
    return blocks, B.features([blocks], [tree.title])


def gold_labels(blocks: B.Blocks, gold: str) -> tuple[np.ndarray, np.ndarray]:
    gold_set = shingles(gold)
    joined = " " + " ".join(_TOKEN.findall(gold.lower())) + " "
    labels, sizes = [], []
    for text in blocks.texts:
        tokens = _TOKEN.findall(text.lower())
        if len(tokens) >= 4:
            s = shingles(text)
            labels.append(len(s & gold_set) >= len(s) / 2)
        else:
            labels.append(bool(tokens) and (" " + " ".join(tokens) + " ") in joined)
        sizes.append(len(tokens) + 1)
    sizes = np.array(sizes, np.float64)
    return np.array(labels, bool), sizes / max(sizes.sum(), 1)


def snippet_labels(blocks: B.Blocks, item: dict) -> tuple[np.ndarray, np.ndarray]:
    with_ = [_WS.sub(" ", s).strip() for s in item["with"]]
    without = [_WS.sub(" ", s).strip() for s in item["without"]]
    labels, weights = [], []
    for text in blocks.texts:
        t = _WS.sub(" ", text).strip()
        pos = any(s and s in t for s in with_) or (len(t) >= 10 and any(t in s for s in with_))
        neg = any(s and s in t for s in without) or (len(t) >= 10 and any(t in s for s in without))
        labels.append(pos and not neg)
        weights.append((len(_TOKEN.findall(t)) + 1) if pos != neg else 0.0)
    w = np.array(weights, np.float64)
    return np.array(labels, bool), w / max(w.sum(), 1e-9)


def _set(raws, labels, score) -> dict:
    """One page set: its pages' blocks, features, labels and weights (labels(blocks, i) for page i)."""
    data = {"blocks": [], "X": [], "y": [], "w": [], "score": score}
    for i, raw in enumerate(raws):
        blocks, x = page_data(raw)
        y, w = labels(blocks, i)
        for k, v in zip(("blocks", "X", "y", "w"), (blocks, x, y, w)):
            data[k].append(v)
    return data


def load() -> dict[str, dict]:
    """set -> {blocks: [Blocks], X: [features], y, w, score}."""
    started = time.perf_counter()
    traf = eval_pages()
    items = [item for _, item, _ in traf]
    out = {"trafilatura-eval": _set([raw for _, _, raw in traf], lambda b, i: snippet_labels(b, items[i]),
                                    lambda outs: snippet_scores(items, outs))}
    for name in CLEANEVAL_SETS:
        pages = cleaneval_pages(name)
        golds = [gold for _, _, gold in pages]
        out[name] = _set([raw for _, raw, _ in pages], lambda b, i, golds=golds: gold_labels(b, golds[i]),
                         lambda outs, golds=golds: shingle_scores(golds, outs))
    print(f"features of {sum(len(d['X']) for d in out.values())} pages in {time.perf_counter() - started:.0f} s")
    return out


def fit(sets: dict[str, dict], names):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = np.concatenate([x for n in names for x in sets[n]["X"]])
    y = np.concatenate([v for n in names for v in sets[n]["y"]])
    w = np.concatenate([v for n in names for v in sets[n]["w"]])
    keep = w > 0
    clf = HistGradientBoostingClassifier(**PARAMS)
    clf.fit(X[keep], y[keep], sample_weight=w[keep])
    return clf


_ALL_LEFT = float(np.finfo(np.float32).max)


def _float32_at_most(t: float) -> float:
    """The largest float32 <= t: for float32 features x, x <= t exactly when x <= this."""
    f = np.float32(t)
    return float(np.nextafter(f, np.float32(-np.inf)) if float(f) > t else f)


def export(clf, threshold: float, extra: dict) -> dict:
    """scikit-learn's trees as udfs.blocks.TreeModel's complete trees (thresholds as float32, the type the
    features are compared in)."""
    depth = max(int(p[0].nodes["depth"].max()) for p in clf._predictors)
    trees = []
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        feature, split = [0] * (2 ** depth - 1), [_ALL_LEFT] * (2 ** depth - 1)
        value = [0.0] * 2 ** depth

        def place(i: int, slot: int, level: int) -> None:
            if level == depth:
                value[slot - (2 ** depth - 1)] = float(nodes["value"][i])
            elif nodes["is_leaf"][i]:
                place(i, 2 * slot + 1, level + 1)          # everything goes left, to the leaf's value
            else:
                feature[slot] = int(nodes["feature_idx"][i])
                split[slot] = _float32_at_most(float(nodes["num_threshold"][i]))
                place(int(nodes["left"][i]), 2 * slot + 1, level + 1)
                place(int(nodes["right"][i]), 2 * slot + 2, level + 1)

        place(0, 0, 0)
        trees.append({"feature": feature, "threshold": split, "value": value})
    return {"version": "blocks_v1", "features": list(B.FEATURES), "base": float(clf._baseline_prediction.ravel()[0]),
            "threshold": threshold, "depth": depth, "trees": trees, **extra}


def held_out_scores(sets, clf, name: str) -> dict[float, dict]:
    d = sets[name]
    probs = [clf.predict_proba(x)[:, 1] if len(x) else np.zeros(0) for x in d["X"]]
    return {t: d["score"]([B.render(b, p >= t) for b, p in zip(d["blocks"], probs)]) for t in THRESHOLDS}


def data_versions() -> dict:
    from udfs.hashing import file_sha256

    files = [TRAFILATURA_EVAL / "evaldata.json"] + [SHARED / "html" / "cleaneval" / f"{n}.jsonl.gz" for n in CLEANEVAL_SETS]
    return {str(f.relative_to(SHARED)): file_sha256(str(f)) for f in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(B.MODEL_PATH))
    args = ap.parse_args()
    sets = load()
    names = list(sets)
    cv = {}
    for name in names:
        started = time.perf_counter()
        clf = fit(sets, [n for n in names if n != name])
        cv[name] = held_out_scores(sets, clf, name)
        best = max(cv[name], key=lambda t: cv[name][t]["f1"])
        print(f"  held out {name:24s} F1 at 0.5: {cv[name][0.5]['f1']:.3f}  best {best}: {cv[name][best]['f1']:.3f}"
              f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    threshold = max(THRESHOLDS, key=lambda t: np.mean([cv[n][t]["f1"] for n in names]))
    print(f"threshold {threshold}: mean held-out F1 {np.mean([cv[n][threshold]['f1'] for n in names]):.3f}")
    clf = fit(sets, names)
    spec = export(clf, threshold, {
        "trained_on": data_versions(), "params": PARAMS,
        "libraries": {"scikit-learn": version("scikit-learn"), "resiliparse": version("resiliparse")},
        "held_out_f1": {n: {str(t): round(cv[n][t]["f1"], 4) for t in THRESHOLDS} for n in names},
    })
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, separators=(",", ":"))
        fh.write("\n")
    inside = {n: 1 - sum((w * y * b.in_clean).sum() for w, y, b in zip(sets[n]["w"], sets[n]["y"], sets[n]["blocks"]))
              / sum((w * y).sum() for w, y in zip(sets[n]["w"], sets[n]["y"])) for n in names}
    report("train_extractor", ["held out", *(str(t) for t in THRESHOLDS), "main content inside boilerplate-named"],
           [[n, *(round(cv[n][t]["f1"], 4) for t in THRESHOLDS), round(inside[n], 3)] for n in names],
           {"command": "python -m bench.train_extractor", "threshold": threshold, "params": PARAMS,
            "mean_held_out_f1": round(float(np.mean([cv[n][threshold]["f1"] for n in names])), 4)})
    model = B.TreeModel(spec)
    x = np.concatenate([x for n in names for x in sets[n]["X"][:50] if len(x)])
    err = np.abs(model.log_odds(x) - clf.decision_function(x)).max()
    print(f"wrote {args.out} ({len(spec['trees'])} trees); numpy inference vs scikit-learn: max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("the exported model does not reproduce scikit-learn's scores")


if __name__ == "__main__":
    main()

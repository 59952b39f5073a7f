"""fastText quality classification: training data, training, batch scoring.

One fastText module in the environment: fasttext-wheel 0.9.2 (see pyproject.toml for why). Its
single-string `predict(str)` fails under numpy 2, and its `predict(list, k>1)` repeats the top probability
for every label; we always call the list form (one C++ multilinePredict per batch) with k=1. Models have
two labels and a normalised loss (softmax or hierarchical softmax), so P(positive) is the top probability
when the top label is positive, and one minus it otherwise. tests/test_quality.py checks these
probabilities against fastText's one-example C++ predict and against a softmax we compute from the
model's own matrices.

The classifier follows DCLM (Li et al. 2024, "DataComp-LM"): supervised fastText, word unigrams and
bigrams, two labels (__label__hq reference-quality text, __label__cc crawled web text); a document's score
is P(__label__hq).
"""
from __future__ import annotations

import os
import random
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import numpy as np

POSITIVE, NEGATIVE = "__label__hq", "__label__cc"
_SPACES = re.compile(r"\s+")
MAX_CHARS = 100_000            # a document beyond this is scored and trained on its first MAX_CHARS characters


@dataclass(frozen=True)
class TrainParams:
    """fastText supervised hyperparameters (DCLM's classifier: wordNgrams 2, defaults otherwise)."""
    lr: float = 0.1
    epoch: int = 5
    dim: int = 100
    word_ngrams: int = 2
    min_count: int = 1
    loss: str = "softmax"
    bucket: int = 2_000_000
    threads: int = 1            # one thread: fastText's training is then deterministic for a seed
    seed: int = 0
    extra: dict = field(default_factory=dict)    # any other train_supervised argument

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epoch < 1 or self.dim < 1 or self.word_ngrams < 1 or self.threads < 1:
            raise ValueError("lr, epoch, dim, word_ngrams and threads must be positive")
        if self.loss not in ("softmax", "hs"):
            raise ValueError("loss must be softmax or hs (normalised over the two labels)")

    def arguments(self) -> dict:
        return {"lr": self.lr, "epoch": self.epoch, "dim": self.dim, "wordNgrams": self.word_ngrams,
                "minCount": self.min_count, "loss": self.loss, "bucket": self.bucket, "thread": self.threads,
                "seed": self.seed, "verbose": 0, **self.extra}


def one_line(text: str | None, max_chars: int = MAX_CHARS) -> str:
    """fastText reads one example per line: whitespace (newlines included) collapsed to single spaces."""
    return _SPACES.sub(" ", (text or "")[:max_chars]).strip()


def write_training_file(path: str, positives: Iterable[str], negatives: Iterable[str], seed: int = 0) -> tuple[int, int]:
    """Labelled lines in a seeded random order; returns the counts per class. fastText reads its input in
    order without shuffling: a file of all positives then all negatives makes training diverge."""
    lines = [f"{label} {line}" for label, texts in ((POSITIVE, positives), (NEGATIVE, negatives))
             for line in map(one_line, texts) if line]
    random.Random(seed).shuffle(lines)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + ("\n" if lines else ""))
    n_pos = sum(line.startswith(POSITIVE + " ") for line in lines)
    return n_pos, len(lines) - n_pos


def train(positives: Iterable[str], negatives: Iterable[str], params: TrainParams, model_path: str,
          max_backoffs: int = 4) -> dict:
    """Train and save a fastText binary model (fastText's own format, not pickle).

    fastText stops with "Encountered NaN" when training diverges, which its authors trace to a learning
    rate too high for the data (easily separable classes diverge at its default 0.1); we then retry at
    half the rate, up to max_backoffs times, and report the rate that trained."""
    import fasttext

    with tempfile.TemporaryDirectory(prefix="lakesift-fasttext-") as tmp:
        data = os.path.join(tmp, "train.txt")
        n_pos, n_neg = write_training_file(data, positives, negatives, params.seed)
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"training needs both classes: {n_pos} positive and {n_neg} negative examples")
        arguments = params.arguments()
        for attempt in range(max_backoffs + 1):
            try:
                model = fasttext.train_supervised(input=data, **arguments)
                break
            except RuntimeError as exc:
                if "NaN" not in str(exc) or attempt == max_backoffs:
                    raise
                arguments = {**arguments, "lr": arguments["lr"] / 2}
    model.save_model(model_path)
    return {"positives": n_pos, "negatives": n_neg, "words": len(model.words), "labels": list(model.labels),
            "lr": arguments["lr"]}


@lru_cache(maxsize=4)
def load(path: str):
    """A fastText model file, loaded once per Python worker."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(path)


def positive_probability(model, texts: Iterable[str | None]) -> np.ndarray:
    """P(__label__hq) for each text, from one batched top-1 predict. Empty texts get NaN."""
    lines = [one_line(t) for t in texts]
    scores = np.full(len(lines), np.nan, dtype=np.float64)
    todo = [i for i, line in enumerate(lines) if line]
    if not todo:
        return scores
    labels, probs = model.predict([lines[i] for i in todo], k=1)
    top = np.array([float(p[0]) if len(p) else 0.5 for p in probs])
    is_positive = np.array([len(lab) > 0 and lab[0] == POSITIVE for lab in labels])
    scores[todo] = np.where(is_positive, top, 1.0 - top)
    return np.clip(scores, 0.0, 1.0)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) formula, ties given half credit."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    _, tie_group, sizes = np.unique(scores[order], return_inverse=True, return_counts=True)
    ends = np.cumsum(sizes)
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = ((ends - sizes + 1 + ends) / 2)[tie_group]      # 1-based ranks, ties averaged
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(labels: np.ndarray, scores: np.ndarray, cutoff: float = 0.5) -> dict:
    labels = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores) >= cutoff
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "accuracy": float((predicted == labels).mean()) if len(labels) else float("nan"),
            "roc_auc": roc_auc(labels, scores), "examples": int(len(labels))}

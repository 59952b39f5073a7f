"""The combined quality model: evidence from several components, weighed by a logistic regression.

Components (each turns a batch of texts into one or more numeric features):
  fasttext      logit of the fastText classifier's P(reference-like) (DCLM's classifier, Li et al. 2024)
  reference_lm  bits per word under a word n-gram model of the reference text (CCNet, Wenzek et al. 2020),
                and that minus the bits under the same kind of model of the web text (the cross-entropy
                difference of Moore & Lewis 2010, "Intelligent Selection of Language Model Training Data")
  heuristics    Gopher / C4 / FineWeb statistics of udfs.heuristics (count-like ones as log1p)
  length        log characters and log words
  embedding     logit of a linear head on MiniLM sentence embeddings (udfs.neural), when asked for
The combiner is an L2-regularised logistic regression on standardised features, fitted by Newton's method
(deterministic, no sampling), on human labels when given, else on reference-versus-web examples. Its
output is a calibrated probability in [0, 1] (the logistic fit is Platt scaling of the linear score).
Everything it stores is JSON: feature names, standardisation, weights; nothing is pickled.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

COMPONENTS = ("fasttext", "reference_lm", "heuristics", "length", "embedding")
DEFAULT_COMPONENTS = ("fasttext", "reference_lm", "heuristics", "length")
# heuristics fields used as features; counts enter as log1p
HEURISTIC_FEATURES = (
    "stop_word_count", "c4_sentence_count", "mean_word_length", "hash_word_ratio", "ellipsis_word_ratio", "alpha_word_frac",
    "bullet_line_frac", "ellipsis_line_frac", "dup_line_frac", "dup_para_frac", "top_2gram_char_frac",
    "dup_5gram_char_frac", "c4_terminal_line_frac", "c4_short_line_frac", "c4_kept_word_frac",
    "fw_line_punct_frac", "fw_short_line_frac", "fw_dup_line_char_frac",
)
_LOG_FEATURES = {"stop_word_count", "c4_sentence_count"}
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
MIN_LABELS = 20


def component_names(component: str) -> list[str]:
    return {"fasttext": ["fasttext_logit"],
            "reference_lm": ["reference_lm_bits_per_word", "reference_minus_web_bits_per_word"],
            "heuristics": [f"h_{f}" for f in HEURISTIC_FEATURES], "length": ["log_chars", "log_words"],
            "embedding": ["embedding_logit"]}[component]


def validate_components(components: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown quality component(s) {', '.join(unknown)}; choose from {', '.join(COMPONENTS)}")
    if not components:
        raise ValueError("a quality model needs at least one component")
    return tuple(dict.fromkeys(components))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def heuristic_and_length_features(texts, components: Sequence[str]) -> dict[str, np.ndarray]:
    from udfs.heuristics import heuristics_columns

    cols = heuristics_columns(texts, [None] * len(texts))
    out = {}
    if "heuristics" in components:
        for f in HEURISTIC_FEATURES:
            v = np.asarray(cols[f], dtype=np.float64)
            out[f"h_{f}"] = np.log1p(v) if f in _LOG_FEATURES else v
    if "length" in components:
        out["log_chars"] = np.log1p(np.asarray(cols["char_count"], dtype=np.float64))
        out["log_words"] = np.log1p(np.asarray(cols["word_count"], dtype=np.float64))
    return out


def features(texts, components: Sequence[str], fasttext_score: Callable | None = None,
             reference_lm=None, web_lm=None, embedding_score: Callable | None = None) -> tuple[list[str], np.ndarray]:
    """(feature names, matrix texts x features) of the components asked for, in COMPONENTS order."""
    texts = ["" if t is None else t for t in texts]
    cols = heuristic_and_length_features(texts, components) if {"heuristics", "length"} & set(components) else {}
    if "fasttext" in components:
        cols["fasttext_logit"] = _logit(fasttext_score(texts))
    if "reference_lm" in components:
        ref = reference_lm.bits_per_word(texts)
        cols["reference_lm_bits_per_word"] = ref
        cols["reference_minus_web_bits_per_word"] = ref - web_lm.bits_per_word(texts)
    if "embedding" in components:
        cols["embedding_logit"] = _logit(embedding_score(texts))
    names = [n for c in COMPONENTS if c in components for n in component_names(c)]
    return names, np.column_stack([cols[n] for n in names]) if texts else np.zeros((0, len(names)))


@dataclass
class Combiner:
    names: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    c: float
    trained_on: str                 # "labels" | "reference_vs_web"

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = _standardise(x, np.asarray(self.mean), np.asarray(self.scale))
        return z @ np.asarray(self.coef) + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision(x), -40, 40)))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Combiner":
        return cls(**d)


def _standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (np.asarray(x, dtype=np.float64) - mean) / scale
    return np.where(np.isfinite(z), z, 0.0)            # a missing value counts as the training mean


def fit_logistic(z: np.ndarray, y: np.ndarray, c: float, iterations: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (penalty |w|^2 / 2C, intercept free) by Newton's method."""
    n, k = z.shape
    a = np.column_stack([z, np.ones(n)])
    w = np.zeros(k + 1)
    reg = np.full(k + 1, 1.0 / c)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -40, 40)))
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def fit(x: np.ndarray, y: np.ndarray, names: list[str], trained_on: str, c: float | None = None,
        seed: int = 0) -> Combiner:
    """The combiner; `c` None picks the regularisation from C_GRID by 5-fold cross-validated ROC-AUC."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if c is None:
        c = choose_c(x, y, seed)
    mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.nanstd(np.where(np.isfinite(x), x, np.nan), axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    coef, intercept = fit_logistic(_standardise(x, mean, scale), y, c)
    return Combiner(list(names), mean.tolist(), scale.tolist(), coef.tolist(), intercept, float(c), trained_on)


def folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Stratified fold number of every row: each class shuffled with the seed, dealt round-robin."""
    fold = np.zeros(len(y), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def cross_validated_scores(x: np.ndarray, y: np.ndarray, names: list[str], k: int = 5, seed: int = 0,
                           c: float | None = None) -> np.ndarray:
    """Out-of-fold probabilities: the rows that fit a fold's combiner never get their score from it
    (the regularisation is chosen inside each training part)."""
    out = np.zeros(len(y))
    fold = folds(y, k, seed)
    for f in range(k):
        test = fold == f
        model = fit(x[~test], y[~test], names, "labels", c=c, seed=seed + 1)
        out[test] = model.predict(x[test])
    return out


def choose_c(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    best, best_auc = C_GRID[0], -1.0
    for c in C_GRID:
        auc = roc_auc(y, cross_validated_scores(x, y, [], seed=seed, c=c))
        if auc > best_auc + 1e-9:
            best, best_auc = c, auc
    return best


def roc_auc(labels, scores) -> float:
    from udfs.fasttext import roc_auc as auc

    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.isfinite(scores)
    return auc(labels[keep], scores[keep])


def bootstrap_interval(labels, scores, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ROC-AUC over bootstrap resamples of the rows (both classes present)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = []
    while len(values) < rounds:
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].all() or not labels[idx].any():
            continue
        values.append(roc_auc(labels[idx], scores[idx]))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def read_labels(path: str) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of a JSONL file of {"text", "label"} lines; every problem is reported before
    any training starts (line numbers are 1-based)."""
    texts, labels, problems = [], [], []
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read labels file {path}: {exc.strerror}") from None
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"line {number}: not a JSON object")
                continue
            missing = [k for k in ("text", "label") if k not in row]
            if missing:
                problems.append(f"line {number}: missing {' and '.join(missing)}")
                continue
            label, text = row["label"], row["text"]
            if isinstance(label, bool) or label not in (0, 1) or (isinstance(label, float) and not math.isfinite(label)):
                problems.append(f"line {number}: label {label!r} is not 0 or 1")
                continue
            if not isinstance(text, str):
                problems.append(f"line {number}: text is not a string")
                continue
            texts.append(text)
            labels.append(int(label))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"labels file {path}: {shown}")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) < MIN_LABELS:
        raise ValueError(f"labels file {path}: {len(y)} labelled texts; at least {MIN_LABELS} are needed")
    if y.min() == y.max():
        raise ValueError(f"labels file {path}: every label is {int(y[0])}; both classes (0 and 1) are needed")
    return texts, y


# --- a saved model: a folder of JSON, safetensors and the fastText binary -------------------------------
FORMAT = "lakesift-quality"
DESCRIPTOR = "lakesift-model.json"
COMBINER = "combiner.json"
FASTTEXT_FILE = "model.bin"
REFERENCE_LM = "reference_lm"
WEB_LM = "web_lm"
EMBEDDING_HEAD = "embedding_head.safetensors"
MAX_CHARS = 100_000          # characters of a text the heuristics and n-gram models read


class QualityModel:
    """A trained combined model, loaded from its folder (no pickles: JSON, safetensors, fastText's own file)."""

    def __init__(self, folder: str):
        with open(os.path.join(folder, DESCRIPTOR)) as fh:
            self.descriptor = json.load(fh)
        if self.descriptor.get("format") != FORMAT:
            raise ValueError(f"{folder} holds no lakesift quality model")
        self.components = validate_components(self.descriptor["components"])
        self.combiner = None                    # absent while train-quality is still fitting it
        if os.path.exists(os.path.join(folder, COMBINER)):
            with open(os.path.join(folder, COMBINER)) as fh:
                self.combiner = Combiner.from_json(json.load(fh))
        self._fasttext = self._reference = self._web = self._head = None
        if "fasttext" in self.components:
            from udfs import fasttext as ft

            self._fasttext = ft.load(os.path.join(folder, FASTTEXT_FILE))
        if "reference_lm" in self.components:
            from udfs.reference_lm import NgramLM

            self._reference = NgramLM.load(os.path.join(folder, REFERENCE_LM))
            self._web = NgramLM.load(os.path.join(folder, WEB_LM))
        if "embedding" in self.components:
            from safetensors.numpy import load_file

            head = load_file(os.path.join(folder, EMBEDDING_HEAD))
            self._head = (head["weight"].astype(np.float64), float(head["bias"][0]))

    def _embedding_score(self, texts):
        from udfs import neural

        vectors = neural.embed(texts, neural.default_encoder_path(), neural.RunnerOptions())
        w, b = self._head
        return 1.0 / (1.0 + np.exp(-(vectors @ w + b)))

    def features(self, texts) -> tuple[list[str], np.ndarray]:
        from udfs import fasttext as ft

        texts = [("" if t is None else t)[:MAX_CHARS] for t in texts]
        return features(texts, self.components,
                        fasttext_score=(lambda t: ft.positive_probability(self._fasttext, t)) if self._fasttext else None,
                        reference_lm=self._reference, web_lm=self._web, embedding_score=self._embedding_score)

    def score(self, texts) -> np.ndarray:
        """Calibrated P(good) per text; NaN for texts without words."""
        texts = list(texts)
        _, x = self.features(texts)
        p = self.combiner.predict(x)
        empty = np.array([not (t or "").strip() for t in texts], dtype=bool)
        return np.where(empty, np.nan, p)


@functools.lru_cache(maxsize=4)
def load(folder: str) -> QualityModel:
    """A model folder, loaded once per Python worker."""
    return QualityModel(folder)

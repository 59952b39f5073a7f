"""MinHash signatures and LSH banding: the kernels under `lakesift dedup`.

Shingles are word n-grams of normalised text (udfs/text.normalized_words), hashed by udfs/hashing.py
(stable, vectorised over whole Arrow batches):

  shingle hash  the low 32 bits of the 64-bit n-gram hash (a document with fewer than n words has one
                shingle of all its words; an empty one has none and no signature);
  signature     datasketch's "affine32" scheme (datasketch >= 2.0 default): h -> fmix32(h), then for each
                permutation k: a_k * h + b_k mod 2^32 with a_k odd, minimum over the shingles. The
                permutations are drawn exactly as datasketch draws them from np.random.RandomState(seed),
                so for the same shingle hashes our signatures are bit-identical to datasketch.MinHash
                (tests/test_minhash.py checks this).

LSH (Broder 1997; Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", ch. 3.4): b bands of r rows;
two documents are candidates when all r values of some band agree, which happens with probability
1 - (1 - J^r)^b for Jaccard similarity J. FineWeb's 14 bands x 8 rows catch a J = 0.8 pair with
probability 0.924 and a J = 0.6 pair with 0.219; optimal_bands_rows picks (b, r) for a threshold by
minimising the false-positive and false-negative areas under that curve.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from udfs import text as T
from udfs.hashing import WORD_BASE, fmix32, fmix64, ngram_hashes, word_hashes

@dataclass(frozen=True)
class MinHashParams:
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("ngram, bands and rows must be at least 1")
        if self.num_perm > 1024:
            raise ValueError("bands x rows must be at most 1024")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def tag(self) -> str:
        """Version tag carried on every output row, e.g. minhash_5g_14x8 (seed appended when not 1)."""
        base = f"minhash_{self.ngram}g_{self.bands}x{self.rows}"
        return base if self.seed == 1 else f"{base}_s{self.seed}"


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) as datasketch >= 2.0 draws them for scheme 'affine32'."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hashes(words: T.Pieces, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit shingle hashes (the low half of the 64-bit n-gram hashes) and offsets per text."""
    hashes, offsets = ngram_hashes(words, ngram)
    return (hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets


def signatures_from_hashes(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (docs x num_perm, uint32) from 32-bit shingle hashes grouped by offsets.
    Rows of documents without shingles are all 0xFFFFFFFF (datasketch's empty value).

    One permutation at a time over the whole batch's contiguous hash array: a reduceat along contiguous
    memory is 13x faster than over a (shingles x permutations) matrix's columns."""
    n_docs = len(offsets) - 1
    out = np.full((len(a), n_docs), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    has = np.flatnonzero(np.diff(offsets) > 0)
    if not len(has):
        return out.T.copy()
    mixed = fmix32(hashes.astype(np.uint32))
    permuted = np.empty_like(mixed)
    for k in range(len(a)):
        np.multiply(mixed, a[k], out=permuted)              # uint32: wraps modulo 2^32
        np.add(permuted, b[k], out=permuted)
        out[k, has] = np.minimum.reduceat(permuted, offsets[has])
    return out.T.copy()


def signatures(texts, params: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    """(signatures docs x num_perm uint32, has_shingles bool) for a batch of texts."""
    words = T.normalized_words(texts)
    hashes, offsets = shingle_hashes(words, params.ngram)
    a, b = permutations(params.num_perm, params.seed)
    return signatures_from_hashes(hashes, offsets, a, b), np.diff(offsets) > 0


def text_hashes(texts) -> np.ndarray:
    """64-bit hash of each text's normalised word sequence (exact-duplicate key; NFKC, case and
    punctuation folded). Signed int64, as Spark stores bigint."""
    return word_sequence_hashes(T.normalized_words(texts))


def word_sequence_hashes(words: T.Pieces) -> np.ndarray:
    """text_hashes from the texts' normalised words (for callers that need the words too)."""
    wh = word_hashes(words.values)
    counts = words.counts
    with np.errstate(over="ignore"):
        # order-sensitive: each word hash is mixed with its position before summing per document
        pos = (np.arange(len(wh)) - words.offsets[:-1][words.doc_index()]).astype(np.uint64) if len(wh) else wh
        mixed = fmix64(wh ^ (pos * WORD_BASE)) if len(wh) else wh
        running = np.concatenate(([np.uint64(0)], np.cumsum(mixed, dtype=np.uint64)))
        sums = running[words.offsets[1:]] - running[words.offsets[:-1]]      # wrapping: sums modulo 2^64
        return fmix64(sums ^ counts.astype(np.uint64)).view(np.int64)


# ----------------------------------------------------------------------------------------------- LSH

def collision_probability(j, bands: int, rows: int):
    return 1.0 - (1.0 - np.asarray(j, dtype=np.float64) ** rows) ** bands


def optimal_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising the weighted areas of false positives
    (collision probability below the threshold) and false negatives (miss probability above it)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be strictly between 0 and 1")
    below = np.linspace(0.0, threshold, 201)
    above = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(collision_probability(below, b, r), below)
            fn = np.trapezoid(1.0 - collision_probability(above, b, r), above)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values, row by row."""
    return (np.asarray(sig_a) == np.asarray(sig_b)).mean(axis=-1)


def signature_batches(batches, params: MinHashParams):
    """mapInArrow function: (doc_id, crawl, text) -> (doc_id, crawl, version, text_hash, signature)."""
    for batch in batches:
        texts = batch.column("text")
        sig, has = signatures(texts, params)
        n, k = sig.shape
        values = pa.array(sig.view(np.int32).reshape(-1), type=pa.int32())
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), values,
                                         mask=pa.array(~has))
        words = T.normalized_words(texts).counts
        hashes = pa.array(text_hashes(texts), type=pa.int64(), mask=words == 0)
        yield pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), batch.column("crawl"), pa.array([params.tag] * n, type=pa.string()), hashes, lists],
            names=["doc_id", "crawl", "version", "text_hash", "signature"])


def shingle_set_batches(batches, ngram: int):
    """mapInArrow function: (node, text) -> (node, shingles): the sorted distinct 32-bit shingle hashes of
    each text, for exact Jaccard verification of candidate pairs."""
    for batch in batches:
        hashes, offsets = shingle_hashes(T.normalized_words(batch.column("text")), ngram)
        sets = [np.unique(hashes[a:b]).view(np.int32) for a, b in zip(offsets[:-1], offsets[1:])]
        lens = np.array([len(s) for s in sets], dtype=np.int64)
        values = pa.array(np.concatenate(sets) if sets else np.zeros(0, np.int32), type=pa.int32())
        lists = pa.ListArray.from_arrays(pa.array(np.concatenate(([0], np.cumsum(lens))).astype(np.int32)), values)
        yield pa.RecordBatch.from_arrays([batch.column("node"), lists], names=["node", "shingles"])

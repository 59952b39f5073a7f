"""MinHash signatures and LSH banding: the kernels under `lakesift dedup`.

Shingles are word n-grams of normalised text (udfs/text.normalized_words). Hashing is our own, stable
across processes and machines (never Python's hash()), and vectorised over whole Arrow batches:

  word hash     64-bit polynomial over the word's UTF-8 bytes, computed for every word of the batch at
                once from prefix sums over the byte buffer, then the MurmurHash3 64-bit finalizer;
  shingle hash  polynomial over n consecutive word hashes, finalised, low 32 bits (a document with fewer
                than n words has one shingle of all its words; an empty one has none and no signature);
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
import pyarrow.compute as pc

from udfs import text as T

_M64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_M32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_BYTE_BASE = np.uint64(0x100000001B3)          # FNV-1 64-bit prime: odd, so invertible modulo 2^64
_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)     # golden-ratio constant, odd


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


def fmix64(h: np.ndarray) -> np.ndarray:
    s, m1, m2 = _M64
    h = h ^ (h >> s)
    h = h * m1
    h = h ^ (h >> s)
    h = h * m2
    return h ^ (h >> s)


def fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2 = _M32
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s1)


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) as datasketch >= 2.0 draws them for scheme 'affine32'."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def word_hashes(words: pa.Array) -> np.ndarray:
    """Stable 64-bit hash of every string in `words` (large_string), from prefix sums over its bytes.

    H(w) = sum_i byte_i * B^(L-1-i) mod 2^64; with S[j] = sum_{i<j} byte_i * B^(N-1-i) over the whole
    buffer, H = (S[end] - S[start]) * B^-(N-end). Wrapping uint64 arithmetic is the modulo.
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    words = words.cast(pa.large_string())
    offsets = np.frombuffer(words.buffers()[1], dtype=np.int64, count=n + 1, offset=words.offset * 8)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(words.buffers()[2], dtype=np.uint8)[start:end].astype(np.uint64)
    rel = offsets - start
    total = end - start
    with np.errstate(over="ignore"):
        powers = np.empty(total + 1, dtype=np.uint64)
        powers[0] = 1
        if total:
            powers[1:] = _BYTE_BASE
            np.multiply.accumulate(powers, out=powers)
        inv_base = np.uint64(pow(int(_BYTE_BASE), -1, 1 << 64))
        inv_powers = np.empty(total + 1, dtype=np.uint64)
        inv_powers[0] = 1
        if total:
            inv_powers[1:] = inv_base
            np.multiply.accumulate(inv_powers, out=inv_powers)
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(data * powers[total - 1 - np.arange(total, dtype=np.int64)], out=prefix[1:])
        raw = (prefix[rel[1:]] - prefix[rel[:-1]]) * inv_powers[total - rel[1:]]
        return fmix64(raw + (rel[1:] - rel[:-1]).astype(np.uint64))   # length mixed in: "" != "\0"


def shingle_hashes(words: T.Pieces, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(32-bit shingle hashes of all texts, flattened; offsets per text)."""
    counts = words.counts
    wh = word_hashes(words.values)
    starts = words.offsets[:-1]
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    out_offsets = np.concatenate(([0], np.cumsum(per_doc)))
    out = np.zeros(int(out_offsets[-1]), dtype=np.uint64)
    if len(wh) == 0:
        return out.astype(np.uint32), out_offsets
    doc_of = words.doc_index()
    pos_in_doc = np.arange(len(wh)) - starts[doc_of]
    grams = wh.copy()
    with np.errstate(over="ignore"):
        for width in range(1, ngram + 1):
            if width > 1:
                grams = grams[:-1] * _WORD_BASE + wh[width - 1:]
            # short documents (fewer than ngram words) take their single shingle at width == their length
            short = np.flatnonzero((counts == width) & (width < ngram))
            if len(short):
                out[out_offsets[short]] = grams[starts[short]]
        valid = np.flatnonzero(pos_in_doc[: len(grams)] + ngram <= counts[doc_of[: len(grams)]])
        if len(valid):
            d = doc_of[valid]
            out[out_offsets[d] + pos_in_doc[valid]] = grams[valid]
    return (fmix64(out) & np.uint64(0xFFFFFFFF)).astype(np.uint32), out_offsets


def signatures_from_hashes(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray,
                           chunk: int = 32) -> np.ndarray:
    """MinHash signatures (docs x num_perm, uint32) from 32-bit shingle hashes grouped by offsets.
    Rows of documents without shingles are all 0xFFFFFFFF (datasketch's empty value)."""
    n_docs = len(offsets) - 1
    out = np.full((n_docs, len(a)), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    has = np.flatnonzero(np.diff(offsets) > 0)
    if not len(has):
        return out
    mixed = fmix32(hashes.astype(np.uint32))[:, None]
    for k in range(0, len(a), chunk):
        permuted = mixed * a[None, k:k + chunk] + b[None, k:k + chunk]        # uint32: wraps modulo 2^32
        out[has, k:k + chunk] = np.minimum.reduceat(permuted, offsets[has], axis=0)
    return out


def signatures(texts, params: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    """(signatures docs x num_perm uint32, has_shingles bool) for a batch of texts."""
    words = T.normalized_words(texts)
    hashes, offsets = shingle_hashes(words, params.ngram)
    a, b = permutations(params.num_perm, params.seed)
    return signatures_from_hashes(hashes, offsets, a, b), np.diff(offsets) > 0


def text_hashes(texts) -> np.ndarray:
    """64-bit hash of each text's normalised word sequence (exact-duplicate key; NFKC, case and
    punctuation folded). Signed int64, as Spark stores bigint."""
    words = T.normalized_words(texts)
    wh = word_hashes(words.values)
    counts = words.counts
    with np.errstate(over="ignore"):
        # order-sensitive: each word hash is mixed with its position before summing per document
        pos = (np.arange(len(wh)) - words.offsets[:-1][words.doc_index()]).astype(np.uint64) if len(wh) else wh
        mixed = fmix64(wh ^ (pos * _WORD_BASE)) if len(wh) else wh
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

"""Stable hashing of words and word n-grams, vectorised over whole Arrow batches.

Stable across processes, machines and releases (never Python's hash()): persisted signatures and
contamination hits depend on it, and tests pin values.

  word hash   fmix64(sum_i byte_i * B^i + len) mod 2^64 over the word's UTF-8 bytes, B = the FNV-1 64-bit
              prime, for every word of a batch at once from one prefix sum over the byte buffer;
  n-gram hash fmix64 of the polynomial of n consecutive word hashes (Horner, base = the golden-ratio
              constant), built one word at a time over the whole batch.
fmix64/fmix32 are MurmurHash3's finalizers (Appleby), fixed avalanching bijections.
Files (model weights, training inputs, shipped models) are identified by their SHA-256, read in 1 MiB chunks.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from udfs import text as T

_M64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_M32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_BYTE_BASE = np.uint64(0x100000001B3)          # FNV-1 64-bit prime: odd, so invertible modulo 2^64
WORD_BASE = np.uint64(0x9E3779B97F4A7C15)     # golden-ratio constant, odd


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


_POWERS = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]    # B^i and B^-i mod 2^64, per process


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B^i and B^-i (mod 2^64) for i < n, extended on demand and kept for the life of the worker."""
    have = len(_POWERS[0])
    if have < n:
        grow = max(n, 2 * have)
        inverse = np.uint64(pow(int(_BYTE_BASE), -1, 1 << 64))
        with np.errstate(over="ignore"):
            for idx, base in ((0, _BYTE_BASE), (1, inverse)):
                extra = np.full(grow - have, base, dtype=np.uint64)
                extra[0] = _POWERS[idx][-1] * base
                _POWERS[idx] = np.concatenate((_POWERS[idx], np.multiply.accumulate(extra)))
    return _POWERS[0], _POWERS[1]


def word_hashes(words: pa.Array) -> np.ndarray:
    """Stable 64-bit hash of every string in `words`, from one prefix sum over the batch's byte buffer.

    H(w) = fmix64(sum_i byte_i * B^i + len(w)) mod 2^64, B = the FNV-1 64-bit prime. With
    S[j] = sum_{i<j} byte_i * B^i over the whole buffer, a word at [s, e) has sum (S[e] - S[s]) * B^-s;
    wrapping uint64 arithmetic is the modulo, and B is odd so B^-1 exists.
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    index = np.arange(n)
    return concatenation_hashes(words, index, index + 1)


def concatenation_hashes(strings: pa.Array, first: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Stable 64-bit hash of strings[first[k]] + ... + strings[stop[k] - 1] (joined without separator) for
    every k: the word hash of that concatenation, taken from the buffer's prefix sum without building it."""
    return concatenation_hasher(strings)(first, stop)


def concatenation_hasher(strings: pa.Array):
    """concatenation_hashes for one array and many (first, stop) spans: the prefix sum is taken once."""
    n = len(strings)
    if n == 0:
        return lambda first, stop: np.zeros(len(first), dtype=np.uint64)
    strings = strings.cast(pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64, count=n + 1, offset=strings.offset * 8)
    start, end = int(offsets[0]), int(offsets[-1])
    rel = offsets - start
    total = end - start
    powers, inverse = _powers(total + 1)
    with np.errstate(over="ignore"):
        data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[start:end].astype(np.uint64)
        prefix = np.empty(total + 1, dtype=np.uint64)
        prefix[0] = 0
        np.cumsum(np.multiply(data, powers[:total], out=data), out=prefix[1:])

    def hashes(first: np.ndarray, stop: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            s, e = rel[first], rel[stop]
            raw = (prefix[e] - prefix[s]) * inverse[s]
            return fmix64(raw + (e - s).astype(np.uint64))   # length mixed in

    return hashes


def ngram_hashes(words: T.Pieces, ngram: int, short_texts: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit n-gram hashes of all texts, flattened in text order; offsets per text).

    A shingle's hash is the polynomial of its n word hashes, built one word at a time over the whole batch;
    shingles that would cross into the next text are dropped. A text with fewer than n words has one
    shingle of all its words (taken at the width equal to its length); an empty text has none.
    """
    counts = words.counts
    wh = word_hashes(words.values)
    starts = words.offsets[:-1]
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1) if short_texts else 0)
    out_offsets = np.concatenate(([0], np.cumsum(per_doc)))
    if len(wh) == 0:
        return np.zeros(0, dtype=np.uint64), out_offsets
    short = np.flatnonzero((counts > 0) & (counts < ngram)) if short_texts else np.zeros(0, dtype=np.int64)
    short_hashes = np.zeros(len(short), dtype=np.uint64)
    grams = wh
    with np.errstate(over="ignore"):
        for width in range(1, ngram + 1):
            if width > 1:
                grams = grams[:-1] * WORD_BASE + wh[width - 1:]
            at_width = counts[short] == width
            if at_width.any():
                short_hashes[at_width] = grams[starts[short[at_width]]]
    # a full shingle starting at word p is valid when it ends inside p's text
    ends = np.repeat(words.offsets[1:], counts)[: len(grams)]
    regular = grams[np.arange(len(grams)) + ngram <= ends]
    if len(short):
        out = np.empty(int(out_offsets[-1]), dtype=np.uint64)
        slot = np.ones(len(out), dtype=bool)
        slot[out_offsets[short]] = False
        out[slot] = regular
        out[out_offsets[short]] = short_hashes
    else:
        out = regular
    return fmix64(out), out_offsets

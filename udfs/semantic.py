"""Semantic near-duplicates: the kernels under `lakesift dedup --level semantic`.

Embedding  a bag of sentences: the text's sentences (whitespace folded, line breaks included; pieces longer
           than `segment_chars` cut at spaces), of them the `segments` with the smallest stable hash
           (udfs/hashing), each embedded by the neural scorer's sentence encoder (all-MiniLM-L6-v2 by default,
           udfs/neural.embed: mean-pooled, L2-normalised), averaged and normalised again. The sample and the
           mean do not depend on the order of the sentences, so a post with its sentences shuffled gets the
           same vector, and the cost per document is bounded (segments x the encoder's max_tokens). On real
           posts at cosine 0.95 it finds 98% of sentence-shuffled copies (bench/semantic_dedup.py); one
           embedding of the text cut to 256 tokens found 20% (ad hoc, 60 planted copies). Stored as float16
           (768 bytes for 384 dimensions).
LSH        random-hyperplane signatures (Charikar 2002): bit j of a vector is the sign of its dot product with
           hyperplane j, drawn from N(0, 1) by numpy's PCG64 from a seed, so every worker and every later run
           draws the same planes. Two vectors at cosine c agree on a bit with probability p = 1 - arccos(c)/pi;
           `bands` bands of `rows` bits make them candidates with probability 1 - (1 - p^rows)^bands. The
           defaults (20 x 18) find a pair at cosine 0.95 with probability 0.96, at 0.90 with 0.72, at 0.80 with 0.28.
Verify     a candidate pair is kept when the cosine of its stored vectors reaches the threshold.

This replaces SemDedup's k-means (Abbas et al. 2023, "SemDedup: Data-efficient learning at web-scale through
semantic deduplication"): clusters there only bound the all-pairs search; LSH bounds it too, needs no pass over
all vectors to fit centroids, and assigns a new crawl's documents without refitting, so global runs are
incremental like MinHash's.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from udfs.hashing import fmix64, word_hashes


@dataclass(frozen=True)
class SemanticParams:
    threshold: float = 0.95     # cosine of near-duplicate meaning
    bands: int = 20
    rows: int = 18              # hyperplane bits per band
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be between 0 and 1")
        if not 1 <= self.rows <= 62 or self.bands < 1 or self.bands * self.rows > 4096:
            raise ValueError("rows must be 1..62 and bands x rows at most 4096")

    def tag(self, encoder: str) -> str:
        """Version of the clusters, e.g. semdedup_minilm_0.95."""
        return f"semdedup_{encoder}_{self.threshold:g}"


def encoder_tag(path: str | None) -> str:
    """Short name of an encoder folder for version tags: minilm for the default, else the folder's name."""
    if not path:
        return "minilm"
    name = re.sub(r"[^a-z0-9]+", "_", path.rstrip("/").rsplit("/", 1)[-1].lower()).strip("_")
    return name or "encoder"


def candidate_probability(cosine, bands: int, rows: int):
    p = 1.0 - np.arccos(np.clip(np.asarray(cosine, dtype=np.float64), -1, 1)) / math.pi
    return 1.0 - (1.0 - p ** rows) ** bands


def hyperplanes(dim: int, count: int, seed: int) -> np.ndarray:
    """count x dim Gaussian hyperplanes, the same for a seed on every machine."""
    return np.random.Generator(np.random.PCG64(seed)).standard_normal((count, dim)).astype(np.float32)


def band_keys(vectors: np.ndarray, params: SemanticParams) -> np.ndarray:
    """n x bands int64 bucket keys: each band's `rows` sign bits, mixed with the band number."""
    n, dim = vectors.shape
    planes = hyperplanes(dim, params.bands * params.rows, params.seed)
    bits = (vectors.astype(np.float32) @ planes.T) >= 0                        # n x (bands * rows)
    weights = (np.uint64(1) << np.arange(params.rows, dtype=np.uint64))
    codes = (bits.reshape(n, params.bands, params.rows).astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = fmix64(codes + (np.arange(params.bands, dtype=np.uint64) << np.uint64(58)) + np.uint64(1))
    return mixed.view(np.int64)


def to_fp16_bytes(vectors: np.ndarray) -> list[bytes]:
    rows = np.ascontiguousarray(vectors.astype("<f2"))
    return [r.tobytes() for r in rows]


def from_fp16_bytes(values) -> np.ndarray:
    """n x dim float32 from a sequence (or Arrow binary array) of float16 byte strings of equal length."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    if not len(values):
        return np.zeros((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(values), dtype="<f2").reshape(len(values), -1).astype(np.float32)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def segments(text: str, count: int, chars: int) -> list[str]:
    """The text's sentences (ending at . ! or ?; line breaks are spaces, so hard-wrapped mail and Usenet text
    splits like any other), whitespace folded, pieces over `chars` characters cut at spaces; of them the
    `count` with the smallest stable hash, in that hash order (the same whatever order the text puts them
    in)."""
    pieces = []
    for part in _SENTENCE_END.split(text or ""):
        part = " ".join(part.split())
        while len(part) > chars:
            cut = part.rfind(" ", 0, chars + 1)
            cut = cut if cut > 0 else chars
            pieces.append(part[:cut])
            part = part[cut:].strip()
        if part:
            pieces.append(part)
    if len(pieces) <= count:
        return sorted(pieces)
    keys = word_hashes(pa.array(pieces, pa.large_string()))
    return [pieces[i] for i in np.argsort(keys, kind="stable")[:count]]


def document_vectors(texts, path: str, opts, count: int, chars: int) -> tuple[np.ndarray, np.ndarray]:
    """(n x dim normalised bag-of-sentences vectors, mask of texts that had any segment). One encoder pass over
    the segments of all texts, length-sorted into micro-batches by udfs/neural.embed."""
    from udfs.neural import embed

    owned = [segments(t, count, chars) for t in texts]
    flat = [s for segs in owned for s in segs]
    owner = np.repeat(np.arange(len(texts)), [len(segs) for segs in owned])
    has = np.array([bool(segs) for segs in owned], dtype=bool)
    if not flat:
        return np.zeros((len(texts), 0), dtype=np.float32), has
    vectors = embed(flat, path, opts)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    np.add.at(out, owner, vectors)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out, has


def embedding_batches(batches, encoder: str | None, count: int, chars: int, opts, tag: str):
    """mapInArrow function: (doc_id, crawl, text) -> (doc_id, crawl, version, vector): documents without
    words get no vector (NULL) and never match anything."""
    from udfs.neural import default_encoder_path
    from udfs.shipped import local_path

    path = local_path(encoder) if encoder else default_encoder_path()
    for batch in batches:
        vectors, has = document_vectors(batch.column("text").to_pylist(), path, opts, count, chars)
        out: list[bytes | None] = [None] * batch.num_rows
        for i, v in zip(np.flatnonzero(has), to_fp16_bytes(vectors[has])):
            out[i] = v
        yield pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), batch.column("crawl"), pa.array([tag] * batch.num_rows, pa.string()),
             pa.array(out, pa.binary())], names=["doc_id", "crawl", "version", "vector"])


def band_batches(batches, params: SemanticParams):
    """mapInArrow function: (node, scope_key, vector) -> (node, scope_key, keys array<bigint>)."""
    for batch in batches:
        vectors = from_fp16_bytes(batch.column("vector"))
        keys = band_keys(vectors, params) if len(vectors) else np.zeros((0, params.bands), np.int64)
        offsets = pa.array(np.arange(0, keys.size + 1, params.bands, dtype=np.int32) if len(vectors) else [0], pa.int32())
        yield pa.RecordBatch.from_arrays(
            [batch.column("node"), batch.column("scope_key"), pa.ListArray.from_arrays(offsets, pa.array(keys.reshape(-1)))],
            names=["node", "scope_key", "keys"])


def cosine_batches(batches):
    """mapInArrow function: (a, b, va, vb) -> (a, b, cosine) for candidate pairs (vectors are unit length,
    stored as float16: the cosine is their dot product, renormalised)."""
    for batch in batches:
        va, vb = from_fp16_bytes(batch.column("va")), from_fp16_bytes(batch.column("vb"))
        if len(va):
            dots = (va * vb).sum(axis=1) / np.maximum(np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1), 1e-12)
        else:
            dots = np.zeros(0)
        yield pa.RecordBatch.from_arrays([batch.column("a"), batch.column("b"), pa.array(dots.astype(np.float64))],
                                         names=["a", "b", "cosine"])

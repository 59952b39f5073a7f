"""Repeated paragraphs: the kernel under `lakesift dedup --level paragraph`.

A paragraph is a line of a document's text: the text split on "\\n", exactly as Python's str.split("\\n") and
Spark SQL's split(text, '\\n') split it, so a line's index here is its index in gold's cleaning expression
(jobs/gold/recipe.py) and removing lines by index never cuts one in two. Extractors write one block per
line, and DCLM's BFF step splits documents into paragraphs at newlines too (Li et al. 2024, Section 4.3).

Each line's key is udfs/minhash.text_hashes of the line: the stable 64-bit hash of its normalised word sequence
(NFKC, lower case, punctuation folded to spaces), so "Share this:" and "SHARE THIS" are one paragraph. Lines
with fewer than `min_words` normalised words are not counted (never marked as repeated, never removed).

Per document the kernel keeps the counted lines only, as three aligned arrays: their indexes in the split
text, their hashes and their lengths in characters (the newline not included).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs import text as T
from udfs.minhash import word_sequence_hashes


@dataclass(frozen=True)
class ParagraphParams:
    min_words: int = 1     # lines with fewer normalised words are not counted
    copies: int = 2        # a paragraph is repeated when at least this many documents of the scope hold it

    def __post_init__(self) -> None:
        if self.min_words < 1:
            raise ValueError("min_words must be at least 1")
        if self.copies < 2:
            raise ValueError("copies must be at least 2 (a paragraph in one document is not repeated)")

    @property
    def hash_tag(self) -> str:
        """Version of the stored line hashes (what the kernel computes)."""
        return f"para_{self.min_words}w"

    @property
    def tag(self) -> str:
        """Version of the repeated-paragraph signal, e.g. para_1w_2c."""
        return f"{self.hash_tag}_{self.copies}c"


HASH_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("crawl", pa.string()), ("version", pa.string()),
    ("line_index", pa.list_(pa.int32())), ("hashes", pa.list_(pa.int64())), ("chars", pa.list_(pa.int32())),
])


def line_hashes(texts, min_words: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, line_index, hashes, chars) for the counted lines of every text: text i owns entries
    offsets[i]:offsets[i+1]. Vectorised over the whole batch: one split, one normalisation, one hash pass."""
    arr = T.as_text_array(texts)
    parts = pc.split_pattern(arr, "\n")
    flat = parts.flatten()
    per_text = np.diff(np.asarray(parts.offsets, dtype=np.int64))
    first = np.repeat(np.asarray(parts.offsets, dtype=np.int64)[:-1] - int(parts.offsets[0].as_py()), per_text)
    index = np.arange(len(flat), dtype=np.int64) - first
    words = T.normalized_words(flat)
    keep = words.counts >= min_words
    hashes = word_sequence_hashes(words)[keep] if len(flat) else np.zeros(0, np.int64)
    chars = np.asarray(pc.utf8_length(flat), dtype=np.int32)[keep]
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    offsets = kept_before[np.concatenate(([0], np.cumsum(per_text)))].astype(np.int32)
    return offsets, index[keep].astype(np.int32), hashes.astype(np.int64), chars


def line_hash_batches(batches, params: ParagraphParams):
    """mapInArrow function: (doc_id, crawl, text) -> HASH_SCHEMA rows, one per document."""
    for batch in batches:
        offsets, index, hashes, chars = line_hashes(batch.column("text"), params.min_words)
        off = pa.array(offsets, type=pa.int32())
        yield pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), batch.column("crawl"), pa.array([params.hash_tag] * batch.num_rows, pa.string()),
             pa.ListArray.from_arrays(off, pa.array(index, pa.int32())),
             pa.ListArray.from_arrays(off, pa.array(hashes, pa.int64())),
             pa.ListArray.from_arrays(off, pa.array(chars, pa.int32()))], schema=HASH_SCHEMA)


def remove_lines(text: str, indexes) -> str:
    """The text without the lines at `indexes` (positions in text.split("\\n")): what gold's cleaning
    expression computes in Spark SQL, for tests and for tools outside Spark."""
    drop = set(indexes)
    return "\n".join(line for i, line in enumerate(text.split("\n")) if i not in drop)

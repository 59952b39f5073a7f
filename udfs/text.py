"""Text normalisation and splitting shared by every signal, vectorised over whole batches with Arrow.

One definition of a word (a maximal run of non-whitespace characters, Unicode White_Space) and of a
line (a "\\n"-separated piece, whitespace-trimmed, empty ones dropped), so documents.word_count,
heuristics and dedup shingles always agree.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Pieces:
    """The non-empty pieces (words or lines) of a batch of texts, flattened, with per-text offsets:
    text i owns values[offsets[i]:offsets[i+1]]."""
    values: pa.Array          # large_string
    offsets: np.ndarray       # int64, len(texts) + 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc_index(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def per_doc_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-piece array within each text (0 for texts without pieces)."""
        cs = np.concatenate(([0], np.cumsum(values, dtype=np.float64 if values.dtype.kind == "f" else np.int64)))
        return cs[self.offsets[1:]] - cs[self.offsets[:-1]]


def as_text_array(texts) -> pa.Array:
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        return pc.fill_null(arr.cast(pa.large_string()), "")
    return pa.array(["" if t is None else t for t in texts], type=pa.large_string())


def _non_empty(lists: pa.ListArray | pa.LargeListArray) -> Pieces:
    flat = lists.flatten()
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    keep = np.asarray(pc.greater(pc.utf8_length(flat), 0), dtype=bool)
    if keep.all():
        return Pieces(flat, offsets - offsets[0])
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return Pieces(flat.filter(pa.array(keep)), kept_before[offsets - offsets[0]])


def words(texts) -> Pieces:
    """Whitespace-separated words of every text (str.split() semantics). Texts are trimmed and empty ones
    made null first, so the split yields no empty strings and needs no filtering pass."""
    arr = pc.utf8_trim_whitespace(as_text_array(texts))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)
    lists = pc.utf8_split_whitespace(arr)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(lists), 0), dtype=np.int64)
    return Pieces(lists.flatten(), np.concatenate(([0], np.cumsum(lengths))))


def words_by_line(lines: Pieces) -> tuple[Pieces, np.ndarray]:
    """The words of every text, taken from its lines(), and the number of words on each line: one
    whitespace split serves both. A line break is whitespace, so these are exactly words(texts)."""
    if not len(lines.values):
        return Pieces(lines.values, lines.offsets), np.zeros(0, dtype=np.int64)
    lists = pc.utf8_split_whitespace(lines.values)
    per_line = np.asarray(pc.list_value_length(lists), dtype=np.int64)
    per_text = np.concatenate(([0], np.cumsum(per_line)))[lines.offsets]
    return Pieces(lists.flatten(), per_text), per_line


def lines(texts) -> Pieces:
    """Whitespace-trimmed, non-empty lines of every text."""
    return _non_empty(_split_trimmed(texts, "\n"))


def _split_trimmed(texts, pattern: str, regex: bool = False) -> pa.LargeListArray:
    arr = as_text_array(texts)
    parts = pc.split_pattern_regex(arr, pattern) if regex else pc.split_pattern(arr, pattern)
    trimmed = pc.utf8_trim_whitespace(parts.flatten())
    return pa.LargeListArray.from_arrays(pa.array(np.asarray(parts.offsets, dtype=np.int64)), trimmed)


def paragraphs(texts) -> Pieces:
    """Non-empty pieces between blank lines ("\\n", optional spaces, "\\n"), trimmed."""
    return _non_empty(_split_trimmed(texts, r"\n[\s\pZ]*\n", regex=True))


def word_counts(texts) -> np.ndarray:
    return words(texts).counts


def normalized(texts) -> pa.Array:
    """NFKC, lower case, every run of characters that are not letters, digits or combining marks
    replaced by a space: the form dedup shingles and decontamination n-grams are taken from."""
    arr = as_text_array(texts)
    # NFKC costs ~16 us per page, yet most pages are already NFKC (91% of the 990 real test pages):
    # ASCII is, and unicodedata's quick check (~3 us) settles the rest, so only the others are normalised.
    candidates = np.flatnonzero(~np.asarray(pc.string_is_ascii(arr), dtype=bool))
    if len(candidates):
        texts_to_check = arr.take(pa.array(candidates)).to_pylist()
        need = candidates[[not unicodedata.is_normalized("NFKC", t) for t in texts_to_check]]
        if len(need):
            mask = np.zeros(len(arr), dtype=bool)
            mask[need] = True
            arr = pc.replace_with_mask(arr, pa.array(mask), pc.utf8_normalize(arr.filter(pa.array(mask)), "NFKC"))
    return pc.replace_substring_regex(pc.utf8_lower(arr), r"[^\pL\pN\pM\s]+", " ")


def normalized_words(texts) -> Pieces:
    return words(normalized(texts))

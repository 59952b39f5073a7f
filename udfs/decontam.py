"""Decontamination: word n-gram overlap of documents with evaluation sets.

As in GPT-3 (Brown et al. 2020, Appendix C) and DCLM: an evaluation item's text is normalised (udfs/text),
split into word n-grams (13 by default) and hashed (udfs/hashing, 64-bit, so a false match needs a 64-bit
collision); a document is contaminated when any of its n-grams is an item's n-gram. Items shorter than n
words contribute nothing (a 5-word question would otherwise flag thousands of pages).

Item text per format (the LLM-Foundry / DCLM evaluation files):
  {query, choices, gold}              query + the gold choice
  {context, continuation}             context + continuation
  {context_options, continuation}     each option + continuation
  {ctx, endings, label}               ctx + the labelled ending (HellaSwag)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from udfs import text as T
from udfs.hashing import ngram_hashes

MAX_SETS = 64                 # set membership is a uint64 bitmask per n-gram


@dataclass
class EvalIndex:
    """Sorted distinct n-gram hashes of every item, each with the bitmask of the sets that contain it."""
    ngram: int
    hashes: np.ndarray        # uint64, sorted, distinct
    sets: np.ndarray          # uint64 bitmask, aligned with hashes
    names: list[str]          # set name per bit
    items: dict[str, int]     # items read per set
    skipped: dict[str, int]   # malformed lines per set

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(str(self.ngram).encode())
        h.update(self.hashes.tobytes())
        return h.hexdigest()[:8]

    @property
    def version(self) -> str:
        return f"decon_{self.ngram}g_{self.fingerprint()}"


def item_texts(item: dict) -> list[str]:
    """The passages of one evaluation item worth protecting (see module docstring)."""
    if "context_options" in item:
        tail = str(item.get("continuation", ""))
        return [f"{opt} {tail}" for opt in item["context_options"] if isinstance(opt, str)]
    if "ctx" in item and "endings" in item:
        label = item.get("label")
        ending = item["endings"][int(label)] if isinstance(label, (int, str)) and str(label).isdigit() else ""
        return [f"{item['ctx']} {ending}"]
    if "query" in item:
        choices, gold = item.get("choices"), item.get("gold")
        answer = choices[gold] if isinstance(choices, list) and isinstance(gold, int) and 0 <= gold < len(choices) else ""
        return [f"{item['query']} {answer}"]
    if "context" in item:
        return [f"{item['context']} {item.get('continuation', '')}"]
    texts = [v for v in item.values() if isinstance(v, str)]
    return [" ".join(texts)] if texts else []


def read_eval_file(path: str) -> tuple[list[str], int, int]:
    """(passages, items, malformed lines) of one JSONL evaluation file."""
    passages, items, bad = [], 0, 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not an object")
                got = item_texts(item)
            except (ValueError, TypeError, KeyError, IndexError):
                bad += 1
                continue
            items += 1
            passages.extend(got)
    return passages, items, bad


def build_index(paths: list[str], ngram: int = 13) -> EvalIndex:
    """The n-gram index of every *.jsonl file among `paths` (files or directories)."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".jsonl"))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"no evaluation file or folder {p}")
    if not files:
        raise ValueError(f"no .jsonl evaluation files in {', '.join(paths)}")
    if len(files) > MAX_SETS:
        raise ValueError(f"at most {MAX_SETS} evaluation files at once, got {len(files)}")
    all_hashes, all_bits, names, items, skipped = [], [], [], {}, {}
    for bit, path in enumerate(files):
        name = os.path.splitext(os.path.basename(path))[0]
        passages, n_items, n_bad = read_eval_file(path)
        names.append(name)
        items[name], skipped[name] = n_items, n_bad
        hashes, _ = ngram_hashes(T.normalized_words(passages), ngram, short_texts=False)
        hashes = np.unique(hashes)
        all_hashes.append(hashes)
        all_bits.append(np.full(len(hashes), np.uint64(1) << np.uint64(bit), dtype=np.uint64))
    hashes = np.concatenate(all_hashes)
    bits = np.concatenate(all_bits)
    order = np.argsort(hashes, kind="stable")
    hashes, bits = hashes[order], bits[order]
    starts = np.flatnonzero(np.concatenate(([True], hashes[1:] != hashes[:-1])))
    return EvalIndex(ngram, hashes[starts], np.bitwise_or.reduceat(bits, starts), names, items, skipped)


def contamination(texts, index: EvalIndex) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hits per text, OR of the hit sets' bitmasks per text) for a batch of texts."""
    hashes, offsets = ngram_hashes(T.normalized_words(texts), index.ngram, short_texts=False)
    n_docs = len(offsets) - 1
    if not len(hashes) or not len(index.hashes):
        return np.zeros(n_docs, dtype=np.int64), np.zeros(n_docs, dtype=np.uint64)
    pos = np.searchsorted(index.hashes, hashes)
    pos[pos == len(index.hashes)] = 0
    hit = index.hashes[pos] == hashes
    doc = np.repeat(np.arange(n_docs), np.diff(offsets))
    hits = np.bincount(doc[hit], minlength=n_docs)
    masks = np.zeros(n_docs, dtype=np.uint64)
    np.bitwise_or.at(masks, doc[hit], index.sets[pos[hit]])
    return hits, masks


def contamination_batches(batches, index: EvalIndex):
    """mapInArrow function: (doc_id, crawl, text) -> silver.signals_contamination rows."""
    version = index.version
    for batch in batches:
        hits, masks = contamination(batch.column("text"), index)
        sets = [[index.names[b] for b in range(len(index.names)) if int(m) >> b & 1] for m in masks]
        n = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), batch.column("crawl"), pa.array([version] * n, pa.string()),
             pa.array(hits.astype(np.int32), pa.int32()), pa.array(sets, pa.list_(pa.string())),
             pa.array(hits > 0, pa.bool_())],
            names=["doc_id", "crawl", "version", "ngram_hits", "eval_sets", "contaminated"])

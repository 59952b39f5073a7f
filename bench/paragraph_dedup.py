"""Paragraph-level dedup on the real pool: time, memory, what it removes per recipe, the most repeated
paragraphs, and the exact-by-shuffle design against a Bloom filter (DCLM's BFF) measured on the same lines.

Needs the pool lakehouse (`python -m bench.pool all`). Then:

    python -m bench.paragraph_dedup        # lakesift dedup --level paragraph --scope global --recompute,
                                           # then lakesift select for every shipped recipe (global scopes)

Per recipe: of the documents it keeps, how many hold paragraphs another document holds first and the tokens
in them (what `clean: [repeated_paragraphs]` cuts; for a recipe that cleans, the cut it recorded).

Bloom filter: the pool's counted lines in fetch order (warc_date, doc_id: the order our first-holder rule
uses), each document's distinct lines tested against a filter of every earlier document's lines and then
added, as BFF does in one process. Sized for the pool's distinct lines at 4.8, 9.6 and 14.4 bits each (k =
bits x ln 2 hashes: about 10%, 1% and 0.1% false positives). A false positive is a line no earlier document
holds that the filter calls seen: BFF would remove it although it is unique. Bloom filters never miss a real
repeat. Lines are tested in chunks of 1,000 documents against the filter as it stood before the chunk
(repeats inside a chunk are found exactly): the fill seen by a test lags by at most one chunk.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from bench.common import report
from bench.pool import WORK, Sampler, pool_recipes

BITS = (4.8, 9.6, 14.4)
CHUNK_DOCS = 1000


def bloom_false_positives(doc_offsets: np.ndarray, hashes: np.ndarray, first: np.ndarray, bits_per_item: float,
                          distinct: int) -> tuple[int, int]:
    """(false positives, filter bytes): lines first seen in their document (first) that a Bloom filter of
    bits_per_item x distinct bits, filled with every earlier document's lines, reports as seen."""
    m = int(math.ceil(bits_per_item * distinct))
    k = max(1, round(bits_per_item * math.log(2)))
    bitset = np.zeros(m, dtype=bool)
    h = hashes.view(np.uint64)
    h1 = (h & np.uint64(0xFFFFFFFF)).astype(np.uint64)
    h2 = ((h >> np.uint64(32)) | np.uint64(1)).astype(np.uint64)
    with np.errstate(over="ignore"):
        positions = np.stack([(h1 + np.uint64(i) * h2) % np.uint64(m) for i in range(k)]).astype(np.int64)
    false_pos = 0
    for start in range(0, len(doc_offsets) - 1, CHUNK_DOCS):
        a, b = doc_offsets[start], doc_offsets[min(start + CHUNK_DOCS, len(doc_offsets) - 1)]
        seen = bitset[positions[:, a:b]].all(axis=0)
        false_pos += int((seen & first[a:b]).sum())
        bitset[positions[:, a:b].ravel()] = True
    return false_pos, m // 8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paragraph_dedup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(WORK), help=f"the pool's working folder (default {WORK})")
    args = parser.parse_args(argv)
    home = Path(args.work) / "lakehouse"
    if not (home / "silver" / "documents").exists():
        raise SystemExit(f"no pool lakehouse at {home}: run `python -m bench.pool all` first")

    from pyspark.sql import functions as F

    from bench.ablation import overrides_for
    from jobs.gold import select_corpus
    from jobs.runtime import tables
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import paragraph_dedup
    from schemas import gold, silver

    spark = get_spark(JobConfig(home=str(home)), app_name="bench-paragraph-dedup")
    cfg = paragraph_dedup.Config(home=str(home), scope="global", recompute=True)
    with Sampler() as sampler:
        started = time.perf_counter()
        summary = paragraph_dedup.run(spark, cfg)
        wall = time.perf_counter() - started
    tag = cfg.params().tag
    print(f"dedup --level paragraph: {wall:.1f} s, peak JVM {sampler.peak['jvm'] / 2**30:.2f} GiB, "
          f"Python workers {sampler.peak['python_workers'] / 2**30:.2f} GiB")

    selected = {}
    for name in pool_recipes():
        s = select_corpus.run(spark, select_corpus.Config(home=str(home), recipe=name, overrides=overrides_for(name)))
        selected[name] = {k: s.get(k) for k in ("documents_out", "tokens_out", "cleaned_documents", "cleaned_tokens")}
    corpus = tables.read_table(spark, cfg, gold.CORPUS)
    signal = (tables.read_table(spark, cfg, silver.PARAGRAPH_DUPLICATES)
              .where((F.col("version") == tag) & (F.col("scope") == "global")))
    per_recipe = {r.recipe: r for r in corpus.join(signal, "doc_id", "left").groupBy("recipe").agg(
        F.count(F.lit(1)).alias("docs"), F.sum("estimated_tokens").alias("tokens"),
        F.count_if(F.col("repeated_paragraphs") > 0).alias("with_repeats"),
        F.sum(F.floor(F.col("repeated_chars") / select_corpus.TOKEN_CHARS)).alias("repeat_tokens"),
        F.count_if(F.col("repeated_char_frac") >= 0.8).alias("mostly")).collect()}
    rows = []
    for name in pool_recipes():
        r, s = per_recipe[name], selected[name]
        cleans = s["cleaned_tokens"] is not None
        rows.append([name, r.docs, r.tokens, r.with_repeats, int(r.repeat_tokens or 0), r.mostly,
                     s["cleaned_tokens"] if cleans else "-", f"{100 * (s['cleaned_tokens'] or 0) / max(1, r.tokens + (s['cleaned_tokens'] or 0)):.2f}%" if cleans else "-"])

    # the Bloom-filter alternative, on the same lines in fetch order (a bench reads them all into one process,
    # as BFF does; the job itself never collects them)
    stored = (tables.read_table(spark, cfg, silver.PARAGRAPH_HASHES).where(F.col("version") == cfg.params().hash_tag)
              .join(tables.read_table(spark, cfg, silver.DOCUMENTS).select("doc_id", "warc_date"), "doc_id")
              .orderBy(F.col("warc_date").asc_nulls_last(), "doc_id")
              .select(F.array_distinct("hashes").alias("h")).toArrow())
    lists = stored.column("h").combine_chunks()
    doc_offsets = np.asarray(lists.offsets, dtype=np.int64)
    doc_offsets = doc_offsets - doc_offsets[0]
    hashes = np.asarray(lists.flatten(), dtype=np.int64)
    _, first_at = np.unique(hashes, return_index=True)
    first = np.zeros(len(hashes), dtype=bool)
    first[first_at] = True
    distinct = len(first_at)
    exact_repeats = int((~first).sum())
    state_bytes = sum(p.stat().st_size for p in (home / "silver" / "paragraph_hashes").rglob("*.parquet"))
    bloom = []
    for bits in BITS:
        fp, size = bloom_false_positives(doc_offsets, hashes, first, bits, distinct)
        bloom.append({"bits_per_paragraph": bits, "hashes": max(1, round(bits * math.log(2))), "filter_bytes": size,
                      "unique_paragraphs_marked": fp, "of_unique": fp / distinct})
    print("\nBloom filter against exact counts, on the pool's lines in fetch order "
          f"({len(hashes):,} distinct-per-document lines, {distinct:,} distinct, {exact_repeats:,} repeats):")
    for b in bloom:
        print(f"  {b['bits_per_paragraph']:>4} bits/paragraph, k={b['hashes']}: {b['filter_bytes'] / 2**20:.2f} MiB in "
              f"one process, {b['unique_paragraphs_marked']:,} unique paragraphs wrongly marked "
              f"({100 * b['of_unique']:.2f}%), 0 repeats missed")
    print(f"  exact (shuffle): peak JVM {sampler.peak['jvm'] / 2**30:.2f} GiB for the whole job, state table "
          f"{state_bytes / 2**20:.2f} MiB on disk, 0 wrongly marked\n")
    print("most repeated paragraphs (documents holding each):")
    for docs, line in summary["top_paragraphs"]:
        print(f"  {docs:>6}  {' '.join(line.split())[:110]}")
    report("paragraph_dedup", ["recipe", "documents kept", "tokens kept", "with repeated paragraphs",
                               "tokens in them", ">= 80% repeated", "tokens cut by clean", "cut share"], rows, {
        "command": "python -m bench.paragraph_dedup  (after python -m bench.pool all): lakesift dedup --level "
                   "paragraph --scope global --recompute, then lakesift select for every shipped recipe with "
                   "duplicates.scope=global and paragraphs.scope=global",
        "version": tag,
        "dedup": {"wall_seconds": wall, "cpu_seconds": sampler.cpu_seconds(), "peak_jvm_bytes": sampler.peak["jvm"],
                  "peak_python_workers_bytes": sampler.peak["python_workers"],
                  **{k: summary[k] for k in ("rows_in_paragraph_hashes", "rows_out_hashed", "paragraphs",
                                             "repeated_paragraphs", "repeated_chars", "documents_with_repeats",
                                             "distinct_repeated_paragraphs")}},
        "top_paragraphs": summary["top_paragraphs"],
        "selected": selected,
        "bloom_vs_exact": {"lines_distinct_per_document": len(hashes), "distinct_paragraphs": distinct,
                           "repeats": exact_repeats, "exact_state_table_bytes": state_bytes, "bloom": bloom,
                           "chunk_documents": CHUNK_DOCS},
    })


if __name__ == "__main__":
    main()

"""Silver: paragraphs (lines) repeated across documents, counted exactly after normalisation.

Reads   silver.documents             (text of the crawls whose lines are not hashed yet; doc_id, warc_date and
                                      char_count of every document in scope)
Writes  silver.paragraph_hashes      (state: the hashes of each document's counted lines; replaces the rows of
                                      the crawls it hashes)
        silver.paragraph_duplicates  (the signal; scope crawl: replaces the crawls asked for; scope global:
                                      replaces the global rows of every crawl hashed so far)
Re-run  the same inputs give the same rows. A new crawl deduplicated globally hashes only its own text and
        reuses the stored hashes of earlier crawls; the result is what a full run over all of them gives.

Rule. A paragraph is a line of the text (udfs/paragraphs.py). It is repeated when at least `copies` documents
of the scope hold it. Every holder marks it except the first (earliest warc_date, then smallest doc_id: the
rule MinHash clusters pick representatives by), so a recipe that removes the marked lines leaves each
repeated paragraph exactly once in the scope. DCLM's BFF keeps the first occurrence too, but "first" there
is the order files are read in; here it is a function of the documents alone, so incremental and full runs
agree. The first holder keeps its lines even when a recipe later drops it.

Memory. Counts are exact, by shuffle: one (scope, hash, doc) row per distinct line of a document is grouped to
count its holders, and one row per counted line is joined with the repeated hashes. Spark sorts and spills
both to disk, so executor memory is bounded by the partition size, never by the crawl. A Bloom filter (BFF)
keeps one bit array for the whole corpus in one machine's memory (about 9.6 bits per distinct paragraph for
1% false positives) and wrongly removes unique paragraphs at that rate; bench/paragraph_dedup.py measures
both on the real pool.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, option
from jobs.runtime.tracking import job_run
from jobs.silver.compute_minhash import fill_missing
from jobs.silver.graph import NEVER, SCOPES
from schemas import silver
from udfs.paragraphs import ParagraphParams

TOP = 20                         # most repeated paragraphs shown in the report and logged to MLflow


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to deduplicate (default: all)", flag="--crawl", repeat=True)
    scope: str = option("crawl", "crawl: counts within each crawl; global: across every crawl hashed so far, "
                                 "reusing stored hashes (incremental)", choices=SCOPES)
    min_words: int = option(ParagraphParams.min_words, "lines with fewer normalised words are not counted")
    copies: int = option(ParagraphParams.copies, "a paragraph is repeated when at least this many documents hold it")
    recompute: bool = option(False, "hash lines again even where hashes exist")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        self.params()                      # validates min_words / copies

    def params(self) -> ParagraphParams:
        return ParagraphParams(min_words=self.min_words, copies=self.copies)


def hash_lines(documents: DataFrame, params: ParagraphParams) -> DataFrame:
    def kernel(batches):
        from udfs.paragraphs import line_hash_batches

        yield from line_hash_batches(batches, params)

    return documents.select("doc_id", "crawl", "text").mapInArrow(kernel, silver.PARAGRAPH_HASHES.schema)


def transform(hashes: DataFrame, documents: DataFrame, params: ParagraphParams, scope: str) -> tuple[DataFrame, DataFrame]:
    """(signal rows for every document of `hashes`; the repeated paragraphs: scope_key, h, docs and the first
    holder `first.d`)."""
    scope_key = F.col("crawl") if scope == "crawl" else F.lit("*")
    docs = (hashes.join(documents.select("doc_id", "warc_date", "char_count"), "doc_id", "left")
            .select("doc_id", "crawl", scope_key.alias("scope_key"), F.coalesce("warc_date", F.expr(NEVER)).alias("t"),
                    "char_count", "line_index", "hashes", "chars"))
    repeated = (docs.select("scope_key", "doc_id", "t", F.explode(F.array_distinct("hashes")).alias("h"))
                .groupBy("scope_key", "h")
                .agg(F.count(F.lit(1)).alias("docs"), F.min(F.struct("t", F.col("doc_id").alias("d"))).alias("first"))
                .where(F.col("docs") >= params.copies))
    lines = docs.select("doc_id", "scope_key", F.explode(F.arrays_zip("line_index", "hashes", "chars")).alias("l")) \
        .select("doc_id", "scope_key", F.col("l.line_index").alias("i"), F.col("l.hashes").alias("h"),
                F.col("l.chars").alias("c"))
    marked = (lines.join(repeated, ["scope_key", "h"]).where(F.col("doc_id") != F.col("first.d"))
              .groupBy("doc_id").agg(F.array_sort(F.collect_list("i")).alias("idx"), F.sum("c").alias("rc"),
                                     F.max("docs").alias("mc")))
    out = docs.join(marked, "doc_id", "left").select(
        "doc_id", "crawl", F.lit(params.tag).alias("version"), F.lit(scope).alias("scope"),
        F.size("hashes").alias("paragraphs"), F.coalesce(F.size("idx"), F.lit(0)).alias("repeated_paragraphs"),
        F.coalesce("rc", F.lit(0)).cast("int").alias("repeated_chars"),
        F.when(F.coalesce("char_count", F.lit(0)) > 0, F.coalesce("rc", F.lit(0)) / F.col("char_count"))
         .otherwise(F.lit(0.0)).cast("double").alias("repeated_char_frac"),
        F.coalesce("idx", F.expr("array()").cast("array<int>")).alias("repeated_lines"),
        F.coalesce("mc", F.lit(0)).cast("int").alias("max_copies"))
    return out, repeated


def top_paragraphs(repeated: DataFrame, hashes: DataFrame, documents: DataFrame, n: int = TOP) -> list[tuple[int, str]]:
    """(documents holding it, the line as its first holder wrote it) for the n most repeated paragraphs, most
    first: n rows reach the driver, never the counts."""
    top = repeated.orderBy(F.col("docs").desc(), "h").limit(n).select("docs", "h", F.col("first.d").alias("doc_id"))
    ids = [r.doc_id for r in top.select("doc_id").distinct().collect()]
    at = (hashes.where(F.col("doc_id").isin(ids))
          .select("doc_id", F.explode(F.arrays_zip("line_index", "hashes")).alias("l"))
          .select("doc_id", F.col("l.line_index").alias("i"), F.col("l.hashes").alias("h")))
    rows = (top.join(at, ["doc_id", "h"]).groupBy("docs", "h", "doc_id").agg(F.min("i").alias("i"))
            .join(documents.where(F.col("doc_id").isin(ids)).select("doc_id", "text"), "doc_id")
            .select("docs", "h", F.element_at(F.split("text", "\n", -1), F.col("i") + 1).alias("line"))
            .orderBy(F.col("docs").desc(), "h").collect())
    return [(int(r.docs), r.line) for r in rows]


def run(spark: SparkSession, cfg: Config) -> dict:
    params = cfg.params()
    with job_run(cfg, "paragraph_dedup", name=f"dedup paragraphs {params.tag} ({cfg.scope} scope)", version=params.tag, scope=cfg.scope) as tracked:
        doc_version = tables.table_version(spark, cfg, silver.DOCUMENTS)
        tracked.table_read(silver.DOCUMENTS.fullname, doc_version)
        documents = tables.read_table(spark, cfg, silver.DOCUMENTS, doc_version)
        todo, seen = fill_missing(spark, cfg, tracked, documents, silver.PARAGRAPH_HASHES, params.hash_tag,
                                  lambda docs: hash_lines(docs, params))
        hashed = seen["rows"]
        hash_version = tables.table_version(spark, cfg, silver.PARAGRAPH_HASHES)
        tracked.table_read(silver.PARAGRAPH_HASHES.fullname, hash_version)
        hashes = tables.read_table(spark, cfg, silver.PARAGRAPH_HASHES, hash_version).where(F.col("version") == params.hash_tag)
        if cfg.scope == "crawl" and cfg.crawls:
            hashes = hashes.where(F.col("crawl").isin(list(cfg.crawls)))
        out, repeated = transform(hashes, documents, params, cfg.scope)
        repeated = repeated.localCheckpoint()
        out = out.localCheckpoint()
        stats = out.agg(
            F.count(F.lit(1)).alias("documents"), F.sum("paragraphs").alias("paragraphs"),
            F.sum("repeated_paragraphs").alias("repeated"), F.sum("repeated_chars").alias("repeated_chars"),
            F.count_if(F.col("repeated_paragraphs") > 0).alias("touched"), F.collect_set("crawl").alias("crawls")).first()
        distinct = repeated.count()
        crawls = sorted(stats.crawls)
        where = (f"{tables.in_list('crawl', crawls)} AND version = {tables.sql_literal(params.tag)} "
                 f"AND scope = {tables.sql_literal(cfg.scope)}")
        tracked.table_written(silver.PARAGRAPH_DUPLICATES.fullname,
                              tables.replace_where(out, cfg, silver.PARAGRAPH_DUPLICATES, where))
        top = top_paragraphs(repeated, hashes, documents)
        tracked.text("".join(f"{docs}\t{line}\n" for docs, line in top), "top_paragraphs.tsv")
        counts = {"rows_in_paragraph_hashes": stats.documents, "rows_out_paragraph_duplicates": stats.documents,
                  "rows_out_hashed": hashed, "paragraphs": int(stats.paragraphs or 0),
                  "repeated_paragraphs": int(stats.repeated or 0), "repeated_chars": int(stats.repeated_chars or 0),
                  "documents_with_repeats": stats.touched, "distinct_repeated_paragraphs": distinct}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "version": params.tag, "scope": cfg.scope, "crawls": crawls,
                "crawls_hashed": todo, "top_paragraphs": top, **counts}

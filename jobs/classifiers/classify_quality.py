"""Silver: quality-classifier scores for every document.

Reads   silver.documents (the crawls asked for; every crawl by default) and a model: a registered MLflow
        model (models:/NAME@ALIAS or models:/NAME/VERSION) trained by train-quality, or a fastText model file
Writes  silver.signals_quality (replaces that model's rows for those crawls): a combined model's calibrated
        P(good), or a bare fastText model's P(__label__hq); the components used are logged on the run
Re-run  idempotent per crawl and model. The model is loaded once per Python worker; each Arrow batch is
        scored as a whole (one fastText call, vectorised heuristics and n-gram models).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import download_model, is_model_uri, job_run
from schemas import silver
from udfs.hashing import file_sha256
from udfs.shipped import ship


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    model: str = option(help="models:/NAME@ALIAS, models:/NAME/VERSION (from train-quality), or a fastText model file")
    crawls: tuple[str, ...] = option((), "crawl to score (default: all)", flag="--crawl", repeat=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model.startswith("models:/") and not os.path.exists(self.model):
            raise ValueError(f"--model must be models:/NAME@ALIAS, models:/NAME/VERSION or an existing file: {self.model}")
        if self.model.startswith("models:/") and not is_model_uri(self.model):
            raise ValueError(f"not a model URI: {self.model} (use models:/NAME@ALIAS or models:/NAME/VERSION)")


@dataclass(frozen=True)
class ResolvedModel:
    path: str           # local fastText file, or a combined model's folder
    name: str
    version: str
    kind: str = "fasttext"              # fasttext | combined
    components: tuple[str, ...] = ("fasttext",)


def resolve_model(cfg: Config) -> ResolvedModel:
    """Download a registered model's files (or take a local file); never unpickles anything."""
    if not cfg.model.startswith("models:/"):
        digest = file_sha256(cfg.model)[:12]
        return ResolvedModel(os.path.abspath(cfg.model), os.path.splitext(os.path.basename(cfg.model))[0], digest)
    local, name, version = download_model(cfg, cfg.model)
    descriptor_path = os.path.join(local, "lakesift-model.json")
    file_name = "model.bin"
    if os.path.exists(descriptor_path):
        with open(descriptor_path) as fh:
            descriptor = json.load(fh)
        if descriptor.get("format") == "lakesift-quality":
            return ResolvedModel(local, name, version, "combined", tuple(descriptor["components"]))
        if descriptor.get("format") != "fasttext":            # quality models of lakesift before the combiner
            raise ValueError(f"{cfg.model} is a {descriptor.get('format')} model, not a quality model")
        file_name = descriptor["file"]
    return ResolvedModel(os.path.join(local, file_name), name, version)


def transform(documents: DataFrame, model_ref: str, name: str, version: str, kind: str = "fasttext") -> DataFrame:
    def score(batches):
        import pyarrow as pa

        from udfs import fasttext, quality
        from udfs.shipped import local_path

        if kind == "combined":
            model = quality.load(local_path(model_ref))
            scorer = model.score
        else:
            model = fasttext.load(local_path(model_ref))
            scorer = lambda texts: fasttext.positive_probability(model, texts)    # noqa: E731
        for batch in batches:
            scores = scorer(batch.column("text").to_pylist())
            n = batch.num_rows
            yield pa.RecordBatch.from_arrays(
                [batch.column("doc_id"), batch.column("crawl"), pa.array([name] * n, pa.string()),
                 pa.array([version] * n, pa.string()), pa.array(scores, pa.float64(), from_pandas=True)],
                names=["doc_id", "crawl", "model", "model_version", "score"])

    return documents.select("doc_id", "crawl", "text").mapInArrow(score, silver.SIGNALS_QUALITY.schema)


def run(spark: SparkSession, cfg: Config) -> dict:
    model = resolve_model(cfg)
    with job_run(cfg, "classify_quality", name=f"classify {model.name} v{model.version}", model=model.name, model_version=model.version) as tracked:
        tracked.params(model_name=model.name, model_version=model.version, model_kind=model.kind,
                       model_components=",".join(model.components))
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        seen = Observation("scores")
        scored = transform(docs, ship(spark, model.path, cfg.home), model.name, model.version, model.kind)
        scored = scored.observe(seen, F.count(F.lit(1)).alias("rows"), F.count_if(F.col("score").isNull()).alias("no_text"),
                                F.avg("score").alias("mean_score"))
        where = tables.crawl_scope(crawls, f"model = {tables.sql_literal(model.name)}")
        tracked.table_written(silver.SIGNALS_QUALITY.fullname, tables.replace_where(scored, cfg, silver.SIGNALS_QUALITY, where))
        stats = seen.get
        counts = {"rows_out_scores": stats["rows"], "rows_out_without_text": stats["no_text"],
                  "mean_score": float(stats["mean_score"] or 0.0)}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "model": model.name, "model_version": model.version, "crawls": crawls,
                "components": list(model.components), **counts}


def report(s: dict) -> Report:
    return Report(s["rows_out_scores"], s["rows_out_scores"],
                  f"{s['rows_out_scores']} documents scored by {s['model']} v{s['model_version']} (mean score "
                  f"{s['mean_score']:.3f}; {s['rows_out_without_text']} without text)")


STAGE = Stage("classify", "score documents with a quality classifier -> silver.signals_quality", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(silver.DOCUMENTS.fullname, "models"),
              writes=(silver.SIGNALS_QUALITY.fullname,), report=report)

"""Silver: neural scores for every document (embedding classifier, reference-model loss, learnability).

Reads   silver.documents (the crawls asked for; every crawl by default) and registered models:
        --model (embedding head, reference LM, or the learner LM for learnability) and --reference
Writes  silver.signals_neural (replaces the rows of this scorer and model for those crawls)
Re-run  idempotent; scores are deterministic for the same model versions.
GPU: an iterator pandas UDF loads the model once per Python worker and scores length-sorted micro-batches
under inference_mode with bf16 autocast on CUDA (see README, "Neural scoring on GPUs", for the Spark
resource settings that give each task a GPU).
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import download_model, is_model_uri, job_run
from schemas import silver
from udfs.neural import SCORERS, RunnerOptions, neural_udf
from udfs.shipped import ship


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    scorer: str = option(help="which score", choices=tuple(SCORERS))
    model: str = option(help="models:/NAME@ALIAS or models:/NAME/VERSION (learnability: the learner LM)")
    reference: str | None = option(None, "learnability: the reference LM, models:/NAME@ALIAS")
    crawls: tuple[str, ...] = option((), "crawl to score (default: all)", flag="--crawl", repeat=True)
    batch_size: int = option(RunnerOptions.batch_size, "texts per forward pass")
    max_tokens: int = option(RunnerOptions.max_tokens, "tokens scored per text: encoder word pieces, or bytes for "
                                                       "the byte LMs")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {', '.join(SCORERS)}")
        for uri in filter(None, (self.model, self.reference)):
            if not is_model_uri(uri):
                raise ValueError(f"not a model URI: {uri} (use models:/NAME@ALIAS or models:/NAME/VERSION)")
        if self.scorer == "learnability" and not self.reference:
            raise ValueError("learnability needs --reference models:/REFERENCE@ALIAS besides the learner --model")
        RunnerOptions(self.batch_size, self.max_tokens, self.device)


def transform(documents: DataFrame, kind: str, folder: str, reference: str | None, name: str, version: str,
              opts: RunnerOptions) -> DataFrame:
    scores = neural_udf(kind, folder, reference, opts)
    return documents.select("doc_id", "crawl", F.lit(kind).alias("scorer"), F.lit(name).alias("model"),
                            F.lit(version).alias("model_version"), scores("text").alias("score"))


def run(spark: SparkSession, cfg: Config) -> dict:
    folder, name, version = download_model(cfg, cfg.model)
    reference = None
    if cfg.reference:
        reference, ref_name, ref_version = download_model(cfg, cfg.reference)
        name, version = f"{name}/{ref_name}", f"{version}/{ref_version}"
    opts = RunnerOptions(cfg.batch_size, cfg.max_tokens, cfg.device)
    with job_run(cfg, "score_neural", name=f"score-neural {cfg.scorer} {name} v{version}", scorer=cfg.scorer, model=name) as tracked:
        tracked.params(model_name=name, model_version=version)
        crawls = sorted(cfg.crawls)
        docs = tables.read_for_job(spark, cfg, silver.DOCUMENTS, tracked, crawls)
        seen = Observation("neural")
        shipped = ship(spark, folder, cfg.home), ship(spark, reference, cfg.home) if reference else None
        out = transform(docs, cfg.scorer, *shipped, name, version, opts).observe(
            seen, F.count(F.lit(1)).alias("rows"), F.count_if(F.col("score").isNull()).alias("no_text"),
            F.avg("score").alias("mean"))
        where = tables.crawl_scope(crawls, f"scorer = {tables.sql_literal(cfg.scorer)} AND model = {tables.sql_literal(name)}")
        tracked.table_written(silver.SIGNALS_NEURAL.fullname, tables.replace_where(out, cfg, silver.SIGNALS_NEURAL, where))
        stats = seen.get
        counts = {"rows_out_scores": stats["rows"], "rows_out_without_text": stats["no_text"],
                  "mean_score": float(stats["mean"]) if stats["mean"] is not None else float("nan")}
        tracked.metrics(**counts)
        return {"run_id": tracked.run_id, "scorer": cfg.scorer, "model": name, "model_version": version, **counts}


def report(s: dict) -> Report:
    return Report(s["rows_out_scores"], s["rows_out_scores"],
                  f"{s['rows_out_scores']} documents scored by {s['scorer']} {s['model']} v{s['model_version']} (mean "
                  f"score {s['mean_score']:.4f}; {s['rows_out_without_text']} without text)")


STAGE = Stage("score-neural", "score documents with a neural scorer -> silver.signals_neural", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(silver.DOCUMENTS.fullname, "models"),
              writes=(silver.SIGNALS_NEURAL.fullname,), report=report)

"""Proxy: evaluate a trained proxy model and record its scores where recipes are compared.

Reads   the model of an MLflow run (safetensors + config, never unpickled), held-out reference text,
        and evaluation sets (JSONL: --evals, else $LAKESIFT_EVALS)
Writes  metrics on the same MLflow run (heldout_bpb_final, <task>_acc, <task>_acc_norm, <task>_centered,
        core_like) and gold.proxy_evals (replaces that run's rows)
Re-run  the same run, limit and seed give the same scores.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import SparkSession

from jobs.proxy import evaluate, trainer
from jobs.proxy.trainer import heldout_domains
from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import client_and_experiment, tracking_uri
from jobs.silver.detect_contamination import default_eval_paths
from schemas import gold
from udfs import lm

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    run: str = option(help="MLflow run id of a train-proxy run", metavar="RUN_ID")
    evals: str | None = option(None, "folder of evaluation JSONL files (default: $LAKESIFT_EVALS)")
    tasks: tuple[str, ...] = option((), "task to run (default: every task present)", flag="--task", repeat=True,
                                    choices=tuple(evaluate.TASKS))
    limit: int | None = option(200, "items per task, a seeded sample (0: all)")
    heldout: tuple[str, ...] = option((), "held-out evaluation domains (default: those the model was trained "
                                          "with)", metavar="[NAME=]FILE")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))
    seed: int = option(0, "seed of the evaluation sample")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.limit == 0:
            object.__setattr__(self, "limit", None)
        if not _RUN_ID.match(self.run):
            raise ValueError(f"not an MLflow run id: {self.run!r}")
        unknown = set(self.tasks) - set(evaluate.TASKS)
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; known: {', '.join(evaluate.TASKS)}")

    def eval_dir(self) -> str | None:
        if self.evals:
            return self.evals
        found = default_eval_paths()
        return found[0] if found else None


def load_run_model(cfg: JobConfig, run_id: str, device: str):
    """(model, config dict) of a train_proxy run, from its safetensors artifact."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", tracking_uri=tracking_uri(cfg))
    try:
        return lm.load_folder(local, device)
    except ValueError:
        raise ValueError(f"run {run_id} holds no lakesift proxy model") from None


def run(spark: SparkSession, cfg: Config) -> dict:
    client, _ = client_and_experiment(cfg)
    source = client.get_run(cfg.run)
    device = lm.device_for(cfg.device)
    model, config = load_run_model(cfg, cfg.run, device)
    from jobs.proxy.train_proxy import Config as TrainConfig

    logged = tuple(p for p in source.data.params.get("heldout_paths", "").split(",") if p)   # what training evaluated on
    excluded = tuple(p for p in source.data.params.get("heldout_excluded", "").split(",") if p)
    paths = cfg.heldout or logged or TrainConfig(home=cfg.home, recipe=config["recipe"]).heldout_paths()
    by_domain = trainer.domains_bpb(model, heldout_domains(paths), device)
    bpb = trainer.deciding_mean(by_domain, excluded)
    results, malformed = ({}, {})
    eval_dir = cfg.eval_dir()
    if eval_dir:
        results, malformed = evaluate.evaluate(model, eval_dir, device, cfg.tasks or None, cfg.limit, cfg.seed)
    core = evaluate.core_like(results)
    metrics = {"heldout_bpb_final": bpb, **{f"heldout_bpb_final.{k}": v for k, v in by_domain.items()}}
    for task, scores in results.items():
        for key in ("acc", "acc_norm", "centered"):
            if key in scores:
                metrics[f"{task}_{key}"] = scores[key]
        if malformed.get(task):
            metrics[f"{task}_malformed_lines"] = malformed[task]
        if scores.get("skipped"):
            metrics[f"{task}_skipped_too_long"] = scores["skipped"]
    if core is not None:
        metrics["core_like"] = core
    from mlflow.entities import Metric
    import time

    now = int(time.time() * 1000)
    client.log_batch(cfg.run, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    client.set_tag(cfg.run, "lakesift.evaluated", f"limit={cfg.limit} seed={cfg.seed} evals={eval_dir}")

    base = (cfg.run, config["recipe"], config["recipe_fingerprint"], int(config["corpus_version"]), config["scale"],
            int(config["seed"]), int(lm.ModelConfig(**config["model"]).parameters()),
            int(float(source.data.metrics.get("tokens_trained", 0))))
    rows = [base + ("heldout", "bpb", float(bpb))] + [base + (f"heldout.{k}", "bpb", float(v)) for k, v in by_domain.items()]
    for task, scores in results.items():
        rows += [base + (task, key, float(scores[key])) for key in ("acc", "acc_norm", "centered", "items") if key in scores]
    if core is not None:
        rows.append(base + ("core", "centered", float(core)))
    df = spark.createDataFrame(rows, gold.PROXY_EVALS.schema)
    version = tables.replace_where(df, cfg, gold.PROXY_EVALS, f"run_id = {tables.sql_literal(cfg.run)}")
    return {"run_id": cfg.run, "recipe": config["recipe"], "heldout_bpb": bpb, "heldout_bpb_by_domain": by_domain,
            "core_like": core, "tasks": results,
            "malformed_lines": sum(malformed.values()), "proxy_evals_version": version,
            "skipped_too_long": sum(r.get("skipped", 0) for r in results.values())}


def report(s: dict) -> Report:
    from jobs.console import render_table

    rows = [(task, r["items"], r.get("acc"), r.get("acc_norm"), r.get("centered")) for task, r in sorted(s["tasks"].items())]
    detail = render_table(("task", "items", "accuracy", "length-normalised", "centered"), rows) if rows else ""
    return Report(None, None,
                  f"{s['recipe']}: held-out {s['heldout_bpb']:.4f} bits per byte"
                  + (f", CORE-like {s['core_like']:.4f}" if s["core_like"] is not None else ", no evaluation sets found")
                  + (f"; {s['malformed_lines']} malformed evaluation lines skipped" if s["malformed_lines"] else "")
                  + (f"; {s['skipped_too_long']} items whose answer exceeds the model's context left out"
                     if s["skipped_too_long"] else "") + f"; gold.proxy_evals v{s['proxy_evals_version']}", detail)


STAGE = Stage("eval-proxy", "evaluate a proxy model: held-out bits per byte and in-context tasks", Config,
              lambda spark, cfg, progress: run(spark, cfg), reads=(), writes=(gold.PROXY_EVALS.fullname,), report=report)

"""Proxy: compare curation recipes by training and evaluating proxy models on each, side by side.

Reads   gold.corpus (each recipe's latest version; `select` is run first for a recipe that has none)
Writes  an MLflow parent run `ablate` with one child run per recipe and seed (training + evaluation),
        a comparison table (printed and logged), a plot of held-out bits per byte against tokens seen,
        gold.proxy_evals rows for every child, and per recipe the training speedup against the first
        recipe: tokens the baseline needs to reach its final held-out bits per byte / tokens the recipe
        needs to reach the same value (seed-averaged curves, linear interpolation between evaluations).
Re-run  a new parent run with new children; the same seeds give the same curves on CPU.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.gold import select_corpus
from jobs.proxy import eval_proxy, train_proxy, trainer
from jobs.runtime import output, tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import job_run
from schemas import gold
from schemas.contract import validate_identifier


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipes: tuple[str, ...]
    scale: str = "tiny"
    seeds: int = 2
    tokens: int | None = None
    device: str = "auto"
    limit: int | None = 200              # evaluation items per task
    evals: str | None = None
    heldout: tuple[str, ...] = ()
    max_epochs: float = 8.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.recipes) < 2:
            raise ValueError("ablate compares at least two recipes; the first is the baseline")
        for r in self.recipes:
            validate_identifier(r, "recipe name")
        if len(set(self.recipes)) != len(self.recipes):
            raise ValueError("recipes must be distinct")
        if not 1 <= self.seeds <= 10:
            raise ValueError("seeds must be between 1 and 10")
        if self.scale not in trainer.SCALES:
            raise ValueError(f"scale must be one of {', '.join(trainer.SCALES)}")


def _has_corpus(spark: SparkSession, cfg: JobConfig, recipe: str) -> bool:
    return tables.read_table(spark, cfg, gold.CORPUS).where(F.col("recipe") == recipe).limit(1).count() > 0


def speedups(curves: dict[str, tuple[list[int], list[float]]], baseline: str) -> dict[str, float | None]:
    """tokens(baseline reaches its final bpb) / tokens(recipe reaches it), per recipe."""
    tokens_b, bpb_b = curves[baseline]
    target = bpb_b[-1]
    needed_b = trainer.tokens_to_reach(tokens_b, bpb_b, target)
    out = {}
    for recipe, (tokens, bpb) in curves.items():
        needed = trainer.tokens_to_reach(tokens, bpb, target)
        out[recipe] = None if needed is None or not needed_b else needed_b / needed
    return out


def curve_figure(runs: dict[str, list[dict]], baseline_target: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe, items in runs.items():
        tokens = np.array(items[0]["eval_tokens"])
        curves = np.array([r["eval_bpb"] for r in items])
        ax.plot(tokens, curves.mean(axis=0), marker="o", ms=3, label=f"{recipe} ({len(items)} seeds)")
        if len(items) > 1:
            ax.fill_between(tokens, curves.min(axis=0), curves.max(axis=0), alpha=0.2)
    ax.axhline(baseline_target, color="grey", ls=":", lw=1, label="baseline's final")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title("held-out bits per byte vs tokens seen")
    ax.legend()
    fig.tight_layout()
    return fig


def run(spark: SparkSession, cfg: Config, progress=None) -> dict:
    say = progress or (lambda message: None)
    base = {k: getattr(cfg, k) for k in ("home", "catalog", "schema_prefix", "tracking_uri", "experiment")}
    runs: dict[str, list[dict]] = {}
    with job_run(cfg, "ablate", recipes=",".join(cfg.recipes), scale=cfg.scale) as parent:
        for recipe in cfg.recipes:
            if not _has_corpus(spark, cfg, recipe):
                say(f"select {recipe} (no corpus yet)")
                select_corpus.run(spark, select_corpus.Config(**base, recipe=recipe))
        for recipe in cfg.recipes:
            for seed in range(cfg.seeds):
                say(f"train {recipe} seed {seed}")
                trained = train_proxy.run(spark, train_proxy.Config(
                    **base, recipe=recipe, scale=cfg.scale, seed=seed, tokens=cfg.tokens, device=cfg.device,
                    heldout=cfg.heldout, max_epochs=cfg.max_epochs), progress=lambda m: say(f"  {recipe}/{seed}: {m}"))
                say(f"evaluate {recipe} seed {seed}: held-out bpb {trained['final_heldout_bpb']:.3f}")
                scored = eval_proxy.run(spark, eval_proxy.Config(
                    **base, run=trained["run_id"], evals=cfg.evals, limit=cfg.limit, heldout=cfg.heldout, device=cfg.device))
                runs.setdefault(recipe, []).append({**trained, "core_like": scored["core_like"]})
        curves = {r: (items[0]["eval_tokens"], list(np.mean([x["eval_bpb"] for x in items], axis=0)))
                  for r, items in runs.items()}
        baseline = cfg.recipes[0]
        gains = speedups(curves, baseline)
        rows = []
        for recipe, items in runs.items():
            finals = [x["final_heldout_bpb"] for x in items]
            cores = [x["core_like"] for x in items if x["core_like"] is not None]
            rows.append((recipe, len(items), items[0]["tokens"], round(float(np.mean(finals)), 4),
                         round(float(np.std(finals)), 4), round(float(np.mean(cores)), 4) if cores else None,
                         f"{gains[recipe]:.2f}x" if gains[recipe] else "not reached"))
            parent.metrics(**{f"final_bpb.{recipe}": float(np.mean(finals)),
                              **({f"core_like.{recipe}": float(np.mean(cores))} if cores else {}),
                              **({f"speedup.{recipe}": gains[recipe]} if gains[recipe] else {})})
        columns = ("recipe", "seeds", "tokens", "held-out bpb", "sd", "CORE-like", f"speedup vs {baseline}")
        table = io.StringIO()
        output.table(columns, rows, out=table)
        parent.text(table.getvalue(), "comparison.txt")
        parent.figure(curve_figure(runs, curves[baseline][1][-1]), "heldout_bpb_vs_tokens.png")
        return {"run_id": parent.run_id, "table": table.getvalue(), "speedups": gains, "runs": runs,
                "children": [x["run_id"] for items in runs.values() for x in items]}

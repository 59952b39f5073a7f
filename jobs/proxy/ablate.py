"""Proxy: compare curation recipes by training and evaluating proxy models on each, side by side.

Reads   gold.corpus (each recipe's latest version; `select` is run first for a recipe that has none) through
        its export (train_proxy: one export per recipe and version, shared by every seed and the random arm)
Arms    the recipes (the first is the baseline) and, with --random-like R, a uniform random subset of the
        baseline's corpus as large (in tokens) as recipe R's, drawn anew per seed: so that "smaller" is
        not mistaken for "better".
Writes  an MLflow parent run `ablate` with one child run per arm and seed (training + evaluation), a
        comparison table (printed and logged), a plot of held-out bits per byte against tokens seen (one
        line per arm, a band over seeds), gold.proxy_evals rows for every child, and per arm: held-out
        bits per byte per evaluation domain and their mean over the deciding domains (--exclude names
        domains reported but left out, e.g. the one a quality classifier took its positives from), with a
        95% interval over seeds; the training speedup against the baseline (tokens the baseline needs to
        reach its final held-out bits per byte / tokens the arm needs to reach it; per seed, linear
        interpolation between evaluations) with its interval; how many times the arm repeats its corpus.
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
from jobs.proxy.compare import fmt, speedups, summarize

from jobs import console
from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas import gold
from schemas.contract import validate_identifier


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipes: tuple[str, ...] = option(help="recipes to compare; the first is the baseline")
    scale: str = option("tiny", "proxy model size and token budget preset", choices=tuple(trainer.SCALES))
    seeds: int = option(2, "training seeds per arm")
    tokens: int | None = option(None, "token budget per run (default: the scale's)")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))
    limit: int | None = option(200, "evaluation items per task, a seeded sample (0: all)")
    evals: str | None = option(None, "folder of evaluation JSONL files (default: $LAKESIFT_EVALS)")
    heldout: tuple[str, ...] = option((), "held-out evaluation domains, each measured and reported on its own "
                                     "(default: $LAKESIFT_HELDOUT)", metavar="[NAME=]FILE")
    excluded: tuple[str, ...] = option((), "held-out domains reported but left out of the deciding mean (e.g. the "
                                           "one a quality classifier took its positives from)", flag="--exclude",
                                       metavar="DOMAIN")
    random_like: str | None = option(None, "add an arm: a random subset of the baseline as large (in tokens) as "
                                           "RECIPE's corpus (best: the recipe with the lowest held-out bpb)",
                                     metavar="RECIPE")
    max_epochs: float = option(trainer.MAX_EPOCHS, "most repetitions of a corpus allowed")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.limit == 0:
            object.__setattr__(self, "limit", None)
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
        if self.random_like is not None and self.random_like != "best" and self.random_like not in self.recipes[1:]:
            raise ValueError(f"--random-like {self.random_like} must be one of the compared recipes after the "
                             "baseline, or best")


def _corpus_tokens(spark: SparkSession, cfg: JobConfig, recipe: str) -> int:
    row = tables.read_table(spark, cfg, gold.CORPUS).where(F.col("recipe") == recipe) \
        .agg(F.sum(F.octet_length("text") + 1).alias("tokens")).first()
    return int(row.tokens or 0)


def _has_corpus(spark: SparkSession, cfg: JobConfig, recipe: str) -> bool:
    return tables.read_table(spark, cfg, gold.CORPUS).where(F.col("recipe") == recipe).limit(1).count() > 0


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
    baseline = cfg.recipes[0]
    with job_run(cfg, "ablate", name=f"ablate {cfg.scale}: {' vs '.join(cfg.recipes)}", recipes=",".join(cfg.recipes), scale=cfg.scale) as parent:
        for recipe in cfg.recipes:
            if not _has_corpus(spark, cfg, recipe):
                say(f"select {recipe} (no corpus yet)")
                select_corpus.run(spark, select_corpus.Config(**base, recipe=recipe))
        parent.params(heldout=",".join(cfg.heldout), heldout_excluded=",".join(cfg.excluded), seeds=cfg.seeds)

        def train_arm(arm: str, recipe: str, subset: int | None) -> None:
            for seed in range(cfg.seeds):
                say(f"train {arm} seed {seed}")
                trained = train_proxy.run(spark, train_proxy.Config(
                    **base, recipe=recipe, scale=cfg.scale, seed=seed, tokens=cfg.tokens, device=cfg.device,
                    heldout=cfg.heldout, excluded=cfg.excluded, max_epochs=cfg.max_epochs, subset_tokens=subset),
                    progress=lambda m: say(f"  {arm}/{seed}: {m}"))
                say(f"evaluate {arm} seed {seed}: held-out bpb {trained['final_heldout_bpb']:.4f}")
                scored = eval_proxy.run(spark, eval_proxy.Config(
                    **base, run=trained["run_id"], evals=cfg.evals, limit=cfg.limit, heldout=cfg.heldout, device=cfg.device))
                runs.setdefault(arm, []).append({**trained, "arm": arm, "core_like": scored["core_like"],
                                                 "tasks": scored["tasks"]})

        for recipe in cfg.recipes:
            train_arm(recipe, recipe, None)
        if cfg.random_like:
            like = cfg.random_like
            if like == "best":
                finals = {r: np.mean([x["final_heldout_bpb"] for x in runs[r]]) for r in cfg.recipes[1:]}
                like = min(finals, key=finals.get)
            size = _corpus_tokens(spark, cfg, like)
            arm = f"random_{baseline}_as_{like}"
            parent.params(random_arm=arm, random_arm_tokens=size)
            say(f"random arm: {size:,} tokens of {baseline}, as many as {like}")
            train_arm(arm, baseline, size)
        summary = summarize(runs, baseline)
        curves = {r: (items[0]["eval_tokens"], list(np.mean([x["eval_bpb"] for x in items], axis=0)))
                  for r, items in runs.items()}
        gains = speedups(curves, baseline)
        domains = sorted(next(iter(summary.values()))["by_domain"])
        rows = []
        for arm, s in summary.items():
            rows.append((arm, s["seeds"], s["tokens"], round(s["corpus_epochs"], 2), fmt(s["heldout_bpb"]),
                         *[fmt(s["by_domain"][d], 3) for d in domains],
                         fmt(s["speedup"], 2, "x") + (f" ({s['speedup_not_reached']} not reached)" if s["speedup_not_reached"] else ""),
                         fmt(s["core_like"], 3)))
            parent.metrics(**{f"final_bpb.{arm}": s["heldout_bpb"]["mean"],
                              **{f"final_bpb.{arm}.{d}": s["by_domain"][d]["mean"] for d in domains},
                              **({f"core_like.{arm}": s["core_like"]["mean"]} if s["core_like"]["mean"] is not None else {}),
                              **({f"speedup.{arm}": s["speedup"]["mean"]} if s["speedup"]["mean"] else {})})
        deciding = [d for d in domains if d not in cfg.excluded] or domains
        columns = ("arm", "seeds", "tokens", "epochs", f"held-out bpb (mean of {', '.join(deciding)})",
                   *[f"{d}{' (excluded)' if d in cfg.excluded else ''}" for d in domains],
                   f"speedup vs {baseline}", "CORE-like")
        table = io.StringIO()
        console.table(columns, rows, out=table)
        parent.text(table.getvalue(), "comparison.txt")
        parent.figure(curve_figure(runs, curves[baseline][1][-1]), "heldout_bpb_vs_tokens.png")
        return {"run_id": parent.run_id, "table": table.getvalue(), "speedups": gains, "runs": runs,
                "summary": summary, "domains": domains, "deciding_domains": deciding,
                "children": [x["run_id"] for items in runs.values() for x in items]}


def report(s: dict) -> Report:
    return Report(None, None, f"MLflow parent run {s['run_id']} with {len(s['children'])} child runs; plot "
                              "heldout_bpb_vs_tokens.png", s["table"])


STAGE = Stage("ablate", "train and evaluate proxy models per recipe and seed; compare them", Config, run,
              reads=(gold.CORPUS.fullname, "exports"), writes=("exports", gold.PROXY_EVALS.fullname),
              report=report)

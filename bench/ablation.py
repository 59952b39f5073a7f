"""What curation buys on the real pool: proxy models trained on each recipe's corpus, at the CPU scale.

Needs the pool lakehouse of `python -m bench.pool all` (../shared/data/pool's real texts as crawls, through
the whole pipeline; BENCH_POOL_DIR, default /tmp/lakesift-pool). Then, as a user would:

    lakesift ablate --recipes raw heuristics heuristics_dedup dclm_like --random-like best --scale tiny --seeds 3
        --heldout newsgroups_test=... cleaneval_gold=... wikitext2_test=... --exclude wikitext2_test

Arms: the shipped recipes (dedup read across crawls: the pool was deduplicated globally), and a random subset
of raw as large (in tokens) as the best arm. Evaluation domains never entered the pool, the quality model's
positives or a recipe: the 20 Newsgroups test split, the cleaneval pages' gold text and WikiText-2 test.
WikiText-2 test is reported but left out of the deciding mean, because the quality model's positives
include WikiText-2 validation (its own target). Writes bench/results/ablation.json and the plot
bench/results/ablation_tiny.png. Targets: the whole ablation within 60 minutes here; the best curated arm
reaches raw's final held-out bpb with at most half the tokens, and beats the random subset of its size, with
95% intervals that do not overlap.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.common import RESULTS, SHARED, report

WORK = Path(os.environ.get("BENCH_POOL_DIR", "/tmp/lakesift-pool"))
SCALE = os.environ.get("BENCH_SCALE", "tiny")
SEEDS = int(os.environ.get("BENCH_SEEDS", "3"))
RECIPES = tuple(os.environ.get("BENCH_RECIPES", "raw heuristics heuristics_dedup dclm_like").split())
EXCLUDED = ("wikitext2_test",)


def domains(work: Path) -> tuple[str, ...]:
    manifest = json.loads((work / "pool_manifest.json").read_text())
    return tuple(f"{name}={path}" for name, path in manifest["evaluation_domains"].items())


def overrides_for(recipe: str) -> tuple[str, ...]:
    from jobs.gold import recipe as R

    families = R.load(recipe).families()
    return tuple(f"{f}.scope=global" for f in ("duplicates", "paragraphs") if f in families)


def verdict(summary: dict, baseline: str, random_arm: str) -> dict:
    """The acceptance questions, answered from the figures."""
    curated = {a: s for a, s in summary.items() if a not in (baseline, random_arm)}
    best = min(curated, key=lambda a: curated[a]["heldout_bpb"]["mean"])
    b, r = summary[best], summary[random_arm]
    speed = b["speedup"]
    separated = (b["heldout_bpb"]["high"] is not None and r["heldout_bpb"]["low"] is not None
                 and b["heldout_bpb"]["high"] < r["heldout_bpb"]["low"])
    return {"best_arm": best,
            "best_speedup_mean": speed["mean"], "best_speedup_low": speed["low"],
            "reaches_raw_with_half_the_tokens": bool(speed["mean"] and speed["mean"] >= 2 and not b["speedup_not_reached"]),
            "reaches_raw_with_half_the_tokens_at_95pct": bool(speed["low"] and speed["low"] >= 2),
            "beats_random_subset_with_separated_intervals": bool(separated)}


def main() -> None:
    from jobs.gold import select_corpus
    from jobs.proxy import ablate, compare
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark

    home = str(WORK / "lakehouse")
    if not (WORK / "pool_manifest.json").exists() or not Path(home).is_dir():
        raise SystemExit(f"no pool lakehouse in {WORK}: run `python -m bench.pool all` first")
    spark = get_spark(JobConfig(home=home), app_name="bench-ablation")
    for recipe in RECIPES:                       # the corpora as the pool run selected them (global dedup)
        select_corpus.run(spark, select_corpus.Config(home=home, recipe=recipe, overrides=overrides_for(recipe)))
    heldout = domains(WORK)
    started = time.perf_counter()
    # the evaluation tasks (CORE-like) from the shared data, not from whatever $LAKESIFT_EVALS says
    cfg = ablate.Config(home=home, recipes=RECIPES, scale=SCALE, seeds=SEEDS, limit=100, heldout=heldout,
                        excluded=EXCLUDED, random_like="best", evals=str(SHARED / "evals"))
    result = ablate.run(spark, cfg, progress=lambda m: print(f"  {m} ({time.perf_counter() - started:.0f}s)", flush=True))
    seconds = time.perf_counter() - started
    print(result["table"])
    summary = result["summary"]
    random_arm = next(a for a in summary if a.startswith("random_"))
    answer = verdict(summary, RECIPES[0], random_arm)
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot = RESULTS / f"ablation_{SCALE}.png"
    figure = ablate.curve_figure(result["runs"], summary[RECIPES[0]]["heldout_bpb"]["mean"])
    figure.savefig(plot, dpi=110)
    rows = [[arm, s["seeds"], s["tokens"], round(s["corpus_epochs"], 2), compare.fmt(s["heldout_bpb"]),
             *[compare.fmt(s["by_domain"][d], 3) for d in result["domains"]], compare.fmt(s["speedup"], 2, "x"),
             compare.fmt(s["core_like"], 3)] for arm, s in summary.items()]
    tasks = {arm: {task: compare.interval([x["tasks"][task]["centered"] for x in items if task in x["tasks"]])
                   for task in items[0]["tasks"]} for arm, items in result["runs"].items()}
    above_chance = {arm: [t for t, i in per.items() if i["low"] is not None and i["low"] > 0] for arm, per in tasks.items()}
    report("ablation", ["arm", "seeds", "tokens", "epochs", "held-out bpb (deciding mean)", *result["domains"],
                        "speedup vs raw", "CORE-like"], rows, {
        "scale": SCALE, "seeds": SEEDS, "ablation_seconds": round(seconds), "mlflow_parent_run": result["run_id"],
        "command": ("lakesift ablate --recipes " + " ".join(RECIPES) + f" --random-like best --scale {SCALE} --seeds {SEEDS} "
                    f"--limit 100 --evals {SHARED / 'evals'} --heldout " + " ".join(heldout) + " --exclude " + " ".join(EXCLUDED)
                    + "  (after python -m bench.pool all; recipes selected with duplicates.scope=global)"),
        "domains": result["domains"], "deciding_domains": result["deciding_domains"], "excluded": list(EXCLUDED),
        "summary": summary, "tasks_centered": tasks, "tasks_above_chance": above_chance, "verdict": answer,
        "curves": {arm: {"tokens": items[0]["eval_tokens"], "bpb_per_seed": [x["eval_bpb"] for x in items],
                         "by_domain_per_seed": [x["eval_bpb_by_domain"] for x in items]}
                   for arm, items in result["runs"].items()},
        "plot": str(plot.relative_to(RESULTS.parent.parent)),
        "note": "pool texts are real, wrapped in made-up WARC/HTML; see bench/results/pool.json",
        "targets": {"ablation <= 60 min": seconds <= 3600, **answer},
    })


if __name__ == "__main__":
    main()

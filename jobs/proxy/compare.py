"""Comparing proxy-model arms: means and 95% intervals over seeds, training speedups. Plain numpy, no
Spark: `lakesift ablate` and the GPU ablation (bench/ablation_gpu.py, on a machine without Spark) share it."""
from __future__ import annotations

import numpy as np

from jobs.proxy import trainer

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}   # t(0.975, n-1)


def interval(values) -> dict:
    """Mean and 95% t-interval over seeds (a single seed gives no interval)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = T95.get(len(v) - 1, 1.96) * float(v.std(ddof=1)) / np.sqrt(len(v))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(len(v))}


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


def summarize(runs: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """Per arm: final deciding bpb, per-domain bpb, per-seed speedup against the baseline's same seed, corpus
    repetitions and CORE-like, each as mean and 95% interval over seeds."""
    out = {}
    base_by_seed = {x["seed"]: x for x in runs[baseline]}
    for arm, items in runs.items():
        per_seed_speedup = []
        for x in items:
            b = base_by_seed.get(x["seed"])
            if b is None:
                continue
            gain = speedups({"b": (b["eval_tokens"], b["eval_bpb"]), "a": (x["eval_tokens"], x["eval_bpb"])}, "b")["a"]
            per_seed_speedup.append(gain)
        domains = sorted(items[0].get("final_heldout_bpb_by_domain", {}))
        out[arm] = {
            "seeds": len(items), "tokens": items[0]["tokens"],
            "heldout_bpb": interval([x["final_heldout_bpb"] for x in items]),
            "by_domain": {d: interval([x["final_heldout_bpb_by_domain"][d] for x in items]) for d in domains},
            "speedup": interval(per_seed_speedup), "speedup_per_seed": per_seed_speedup,
            "speedup_not_reached": sum(g is None for g in per_seed_speedup),
            "corpus_epochs": float(np.mean([x.get("corpus_epochs", x.get("epochs", 0.0)) for x in items])),
            "core_like": interval([x.get("core_like") for x in items]),
        }
    return out


def fmt(i: dict, digits: int = 4, suffix: str = "") -> str:
    if i["mean"] is None:
        return "-"
    if i["low"] is None:
        return f"{i['mean']:.{digits}f}{suffix}"
    return f"{i['mean']:.{digits}f}{suffix} [{i['low']:.{digits}f}, {i['high']:.{digits}f}]"

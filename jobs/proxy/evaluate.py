"""Evaluating proxy models: held-out bits per byte, and in-context-learning tasks by log-likelihood.

Plain torch and numpy, no Spark. Tasks, few-shot counts and random baselines follow LLM-Foundry's
evaluation gauntlet (../shared/data/evals/EVAL_GAUNTLET.md), as DCLM's CORE does:
  multiple choice  {query, choices, gold}: the choice with the highest log p(" " + choice | prompt) wins
                   (accuracy), and the highest per byte (length-normalised accuracy)
  schema           {context_options, continuation, gold}: the context under which " " + continuation is
                   most likely wins (WinoGrande, Winograd)
  language model   {context, continuation}: right when greedy decoding reproduces " " + continuation
                   (LAMBADA)
Prompts: k examples drawn from the same file (never the item itself, seeded per item) written as the item
with its answer, then the item; examples end with "\\n". Centered accuracy = (acc - baseline) / (1 - baseline);
the CORE-like score is the mean centered accuracy over the tasks evaluated.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from udfs import lm

EXAMPLE_DELIMITER = "\n"
CONTINUATION_DELIMITER = " "


@dataclass(frozen=True)
class Task:
    file: str
    kind: str          # mc | schema | lm
    shots: int
    baseline: float


# Few-shot counts and random baselines: EVAL_GAUNTLET.md.
TASKS = {
    "arc_easy": Task("arc_easy.jsonl", "mc", 3, 0.25),
    "arc_challenge": Task("arc_challenge.jsonl", "mc", 3, 0.25),
    "piqa": Task("piqa.jsonl", "mc", 10, 0.5),
    "copa": Task("copa.jsonl", "mc", 0, 0.5),
    "boolq": Task("boolq.jsonl", "mc", 0, 0.5),
    "commonsense_qa": Task("commonsense_qa.jsonl", "mc", 0, 0.25),
    "openbook_qa": Task("openbook_qa.jsonl", "mc", 10, 0.25),
    "siqa": Task("siqa.jsonl", "mc", 3, 0.5),
    "hellaswag": Task("hellaswag_val_1000.jsonl", "mc", 0, 0.25),
    "lambada": Task("lambada_openai.jsonl", "lm", 0, 0.0),
    "winogrande": Task("winogrande.jsonl", "schema", 5, 0.5),
    "winograd": Task("winograd_wsc.jsonl", "schema", 3, 0.5),
}


def normalise_item(item: dict, kind: str) -> dict:
    """One item in the task's canonical fields; raises ValueError/KeyError/TypeError when malformed."""
    if kind == "mc":
        if "ctx" in item and "endings" in item:                       # original HellaSwag
            item = {"query": item["ctx"], "choices": item["endings"], "gold": int(item["label"])}
        query, choices, gold = item["query"], item["choices"], int(item["gold"])
        if not isinstance(query, str) or not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise TypeError("query must be text and choices a list of text")
        if not 0 <= gold < len(choices) or len(choices) < 2:
            raise ValueError("gold must index one of at least two choices")
        return {"query": query, "choices": choices, "gold": gold}
    if kind == "schema":
        options, cont, gold = item["context_options"], item["continuation"], int(item["gold"])
        if not isinstance(options, list) or not 0 <= gold < len(options) or not isinstance(cont, str):
            raise ValueError("context_options must be a list that gold indexes")
        return {"context_options": options, "continuation": cont, "gold": gold}
    context, cont = item["context"], item["continuation"]
    if not isinstance(context, str) or not isinstance(cont, str):
        raise TypeError("context and continuation must be text")
    return {"context": context, "continuation": cont}


def load_task(path: str, kind: str, limit: int | None = None, seed: int = 0) -> tuple[list[dict], int]:
    """(items, malformed lines). With a limit, a seeded sample of that many items (the same for every model)."""
    items, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                items.append(normalise_item(json.loads(line), kind))
            except (ValueError, KeyError, TypeError, json.JSONDecodeError):
                bad += 1
    if limit is not None and len(items) > limit:
        keep = sorted(random.Random(seed).sample(range(len(items)), limit))
        items = [items[i] for i in keep]
    return items, bad


def answered(item: dict, kind: str) -> str:
    """An item written with its answer, as a few-shot example."""
    if kind == "mc":
        return item["query"] + CONTINUATION_DELIMITER + item["choices"][item["gold"]]
    if kind == "schema":
        return item["context_options"][item["gold"]] + CONTINUATION_DELIMITER + item["continuation"]
    return item["context"] + CONTINUATION_DELIMITER + item["continuation"]


def fewshot_prefix(items: list[dict], index: int, kind: str, shots: int, seed: int) -> str:
    """k answered examples of the same task (not item `index`), each followed by the example delimiter."""
    if shots <= 0 or len(items) < 2:
        return ""
    rng = random.Random(seed * 1_000_003 + index)
    pool = [i for i in rng.sample(range(len(items)), min(len(items), shots + 1)) if i != index][:shots]
    return "".join(answered(items[i], kind) + EXAMPLE_DELIMITER for i in pool)


def _longest_continuation(item: dict, kind: str) -> int:
    if kind == "mc":
        return max(len((CONTINUATION_DELIMITER + c).encode()) for c in item["choices"])
    return len((CONTINUATION_DELIMITER + item["continuation"]).encode())


def score_task(model, items: list[dict], task: Task, device: str, seed: int = 0) -> dict:
    """accuracy (and length-normalised accuracy for multiple choice) of `model` on `items`. Items whose
    answer alone does not fit the model's context cannot be scored: they are left out and counted
    (`skipped`), never guessed."""
    fits = [it for it in items if _longest_continuation(it, task.kind) + 1 < model.config.context]
    skipped = len(items) - len(fits)
    if not fits:
        return {"items": 0, "skipped": skipped}
    out = _score(model, fits, task, device, seed)
    return {**out, "skipped": skipped} if skipped else out


def _score(model, items: list[dict], task: Task, device: str, seed: int) -> dict:
    contexts, continuations, owners = [], [], []
    for i, item in enumerate(items):
        prefix = fewshot_prefix(items, i, task.kind, task.shots, seed)
        if task.kind == "mc":
            for choice in item["choices"]:
                contexts.append(prefix + item["query"])
                continuations.append(CONTINUATION_DELIMITER + choice)
                owners.append(i)
        elif task.kind == "schema":
            for option in item["context_options"]:
                contexts.append(prefix + option)
                continuations.append(CONTINUATION_DELIMITER + item["continuation"])
                owners.append(i)
        else:
            contexts.append(prefix + item["context"])
            continuations.append(CONTINUATION_DELIMITER + item["continuation"])
            owners.append(i)
    if task.kind == "lm":
        acc = float(lm.greedy_matches(model, contexts, continuations, device).mean())
        return {"items": len(items), "acc": acc, "centered": acc}
    logp, sizes = lm.continuation_logprobs(model, contexts, continuations, device)
    owners = np.array(owners)
    right, right_norm = 0, 0
    for i, item in enumerate(items):
        rows = np.flatnonzero(owners == i)
        right += int(np.argmax(logp[rows]) == item["gold"])
        right_norm += int(np.argmax(logp[rows] / np.maximum(sizes[rows], 1)) == item["gold"])
    acc = right / len(items)
    out = {"items": len(items), "acc": acc, "centered": (acc - task.baseline) / (1 - task.baseline)}
    if task.kind == "mc":
        out["acc_norm"] = right_norm / len(items)
    return out


def evaluate(model, eval_dir: str, device: str, tasks: Sequence[str] | None = None, limit: int | None = None,
             seed: int = 0) -> tuple[dict[str, dict], dict[str, int]]:
    """Every task whose file exists in eval_dir: ({task: scores}, {task: malformed lines})."""
    results, malformed = {}, {}
    for name in tasks or list(TASKS):
        task = TASKS[name]
        path = os.path.join(eval_dir, task.file)
        if not os.path.exists(path):
            continue
        items, bad = load_task(path, task.kind, limit, seed)
        malformed[name] = bad
        results[name] = score_task(model, items, task, device, seed)
    return results, malformed


def core_like(results: dict[str, dict]) -> float | None:
    centered = [r["centered"] for r in results.values() if r.get("items")]
    return float(np.mean(centered)) if centered else None

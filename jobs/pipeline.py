"""`lakesift run`: every stage in order over your own crawl files, skipping what is up to date.

Reads   the crawl files given, reference-quality text (the quality model's positives), evaluation sets and
        held-out text (for decontamination and the proxy comparison)
Writes  every table the stages write; one MLflow parent run `run` with a child run per stage
Re-run  a stage is skipped when an earlier successful run had the same key: its config, the Delta versions
        of the tables it reads, the files it reads (size and modification time) and the versions of the
        registered models it reads; and every table it wrote is still at that version or later. After a
        failure, the next run skips the stages that finished and starts at the one that failed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

from jobs.proxy.trainer import MAX_EPOCHS
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.stages import BY_NAME

NEURAL = ("none", "embedding")
ABLATE = ("none", "tiny", "small", "base", "large")
QUALITY_MODEL = "lakesift_quality"        # the model the shipped dclm_like recipe reads
NEURAL_MODEL = "lakesift_neural"
KEY_TAG, ROWS_TAG, NOTE_TAG, DETAIL_TAG, WROTE_TAG = (
    "lakesift.stage_key", "lakesift.stage_rows", "lakesift.stage_note", "lakesift.stage_detail", "lakesift.stage_wrote")


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    inputs: tuple[str, ...] = option(help="crawl files: WARC/ARC paths, folders, globs or s3:// https:// dbfs:/ URLs",
                                     flag="--input", metavar="PATH")
    recipes: tuple[str, ...] = option(("raw", "dclm_like"), "recipes to select and export (and compare, the first "
                                                            "as baseline)")
    reference_text: tuple[str, ...] = option((), "reference-quality text, the quality model's positives (files, "
                                                 "folders, zip, JSONL); needed by recipes that read quality",
                                             metavar="FILE")
    labels: str | None = option(None, "human quality labels (JSONL text/label) the quality combiner learns from",
                                metavar="FILE.jsonl")
    evals: str | None = option(None, "folder of evaluation JSONL files: decontamination and proxy tasks "
                                     "(default: $LAKESIFT_EVALS; none: both are left out)", metavar="DIR")
    heldout: tuple[str, ...] = option((), "held-out text for the proxy comparison (default: $LAKESIFT_HELDOUT)",
                                      metavar="[NAME=]FILE")
    neural: str = option("none", "neural scoring: embedding trains a MiniLM head on --reference-text and scores "
                                 "every document (CPU: about 100 documents/s)", choices=NEURAL)
    ablate: str = option("none", "train and compare proxy models of this scale on every recipe", choices=ABLATE)
    seeds: int = option(1, "proxy seeds per recipe")
    tokens: int | None = option(None, "proxy token budget (default: the scale's)")
    max_epochs: float = option(MAX_EPOCHS, "most repetitions of a recipe's corpus a proxy run may make")
    dedup_scope: str = option("crawl", "crawl: duplicates within each crawl; global: across every crawl ingested "
                                       "(recipes then read the global clusters)", choices=("crawl", "global"))
    shards: int = option(8, "export shards per recipe")
    crawl: str | None = option(None, "crawl id of the input files (default: from the files)")
    force: bool = option(False, "run every stage, even those whose inputs have not changed")

    def __post_init__(self) -> None:
        super().__post_init__()
        from jobs.gold import recipe as R

        if not self.inputs:
            raise ValueError("run needs --input: the crawl files to curate")
        recipes = [R.load(r) for r in self.recipes]          # unknown recipes and bad YAML fail here
        if not recipes:
            raise ValueError("run needs at least one --recipes")
        needs = {f for r in recipes for f in r.families()}
        missing = [p for p in (*self.reference_text, *(p.partition("=")[2] or p for p in self.heldout_paths()),
                               *([self.labels] if self.labels else []), *([self.eval_dir()] if self.eval_dir() else []))
                   if "://" not in p and not os.path.exists(p)]
        if missing:
            raise ValueError(f"not found: {', '.join(missing)}")
        if ("quality" in needs or self.neural != "none") and not self.reference_text:
            raise ValueError("the quality model and neural scoring learn from reference-quality text: pass "
                             "--reference-text FILES (recipes reading quality: "
                             f"{', '.join(r.name for r in recipes if 'quality' in r.families()) or 'none'})")
        if "contamination" in needs and not self.eval_dir():
            raise ValueError("a recipe reads contamination signals: pass --evals DIR or set LAKESIFT_EVALS")
        if "neural" in needs and self.neural == "none":
            raise ValueError("a recipe reads neural signals: pass --neural embedding")
        if self.ablate != "none":
            if len(self.recipes) < 2:
                raise ValueError("--ablate compares at least two --recipes")
            if not self.heldout_paths():
                raise ValueError("--ablate measures held-out text: pass --heldout FILE or set LAKESIFT_HELDOUT")

    def eval_dir(self) -> str | None:
        return self.evals or os.environ.get("LAKESIFT_EVALS", "").split(os.pathsep)[0] or None

    def heldout_paths(self) -> tuple[str, ...]:
        from jobs.proxy.train_proxy import default_heldout

        return self.heldout or default_heldout()


@dataclass(frozen=True)
class Step:
    label: str            # e.g. "select dclm_like"
    stage: Stage
    cfg: JobConfig


@dataclass
class StepResult:
    label: str
    report: Report
    seconds: float
    run_id: str | None
    skipped: bool
    summary: dict | None = None           # the stage's own summary (None when skipped)


def plan(cfg: Config) -> list[Step]:
    """The steps `lakesift run` takes for this config, in order."""
    loc = cfg.location()
    steps = [Step("ingest", BY_NAME["ingest"], BY_NAME["ingest"].config(**loc, inputs=cfg.inputs, crawl=cfg.crawl)),
             Step("extract", BY_NAME["extract"], BY_NAME["extract"].config(**loc)),
             Step("dedup", BY_NAME["dedup"], BY_NAME["dedup"].config(**loc, scope=cfg.dedup_scope, levels=_levels(cfg)))]
    if cfg.eval_dir():
        steps.append(Step("decontaminate", BY_NAME["decontaminate"],
                          BY_NAME["decontaminate"].config(**loc, evals=(cfg.eval_dir(),))))
    if cfg.reference_text:
        steps += [Step("train-quality", BY_NAME["train-quality"], BY_NAME["train-quality"].config(
                      **loc, name=QUALITY_MODEL, positives=cfg.reference_text, labels=cfg.labels)),
                  Step("classify", BY_NAME["classify"],
                       BY_NAME["classify"].config(**loc, model=f"models:/{QUALITY_MODEL}@champion"))]
    if cfg.neural != "none":
        steps += [Step("train-neural", BY_NAME["train-neural"], BY_NAME["train-neural"].config(
                      **loc, kind=cfg.neural, name=NEURAL_MODEL, positives=cfg.reference_text, max_examples=2000)),
                  Step("score-neural", BY_NAME["score-neural"], BY_NAME["score-neural"].config(
                      **loc, scorer=cfg.neural, model=f"models:/{NEURAL_MODEL}@champion"))]
    steps += [Step(f"select {r}", BY_NAME["select"], BY_NAME["select"].config(**loc, recipe=r, overrides=_overrides(cfg, r)))
              for r in cfg.recipes]
    steps += [Step(f"export {r}", BY_NAME["export"], BY_NAME["export"].config(**loc, recipe=r, shards=cfg.shards))
              for r in cfg.recipes]
    if cfg.ablate != "none":
        steps.append(Step(f"ablate {cfg.ablate}", BY_NAME["ablate"], BY_NAME["ablate"].config(
            **loc, recipes=cfg.recipes, scale=cfg.ablate, seeds=cfg.seeds, tokens=cfg.tokens, evals=cfg.eval_dir(),
            heldout=cfg.heldout_paths(), max_epochs=cfg.max_epochs)))
    return steps


def _levels(cfg: Config) -> tuple[str, ...]:
    """Documents always; paragraphs when a recipe reads them; semantic pairs when a recipe reads semdedup_*
    clusters."""
    from jobs.gold import recipe as R

    recipes = [R.load(r) for r in cfg.recipes]
    semantic = any(str(r.signals.get("duplicates", {}).get("version", "")).startswith("semdedup_") for r in recipes)
    return ("document", *(["paragraph"] if any("paragraphs" in r.families() for r in recipes) else []),
            *(["semantic"] if semantic else []))


def _overrides(cfg: Config, recipe: str) -> tuple[str, ...]:
    """A recipe reading duplicates or paragraphs reads what dedup computed at the scope it ran with."""
    from jobs.gold import recipe as R

    families = R.load(recipe).families()
    return tuple(f"{f}.scope={cfg.dedup_scope}" for f in ("duplicates", "paragraphs") if f in families)


# ------------------------------------------------------------------------------------------- skipping

def _contract(fullname: str):
    from schemas import bronze, gold, silver

    return {c.fullname: c for c in (*bronze.TABLES, *silver.TABLES, *gold.TABLES)}[fullname]


def _versions(spark, cfg: JobConfig, names) -> dict[str, int]:
    from jobs.runtime import tables

    return {name: tables.table_version(spark, cfg, _contract(name)) for name in names
            if name.partition(".")[0] in ("bronze", "silver", "gold")}


def _file_state(value: str):
    """(size, mtime) of a local file, or of every file under a folder; None for anything else."""
    path = value.partition("=")[2] if "=" in value and not os.path.exists(value) else value
    if "://" in path or not os.path.exists(path):
        return None
    if os.path.isfile(path):
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            out.append([os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns])
    return out


def _model_version(client, uri: str) -> str | None:
    from jobs.runtime.tracking import _MODEL_URI

    m = _MODEL_URI.match(uri)
    if not m:
        return None
    try:
        mv = (client.get_model_version_by_alias(m["name"], m["alias"]) if m["alias"]
              else client.get_model_version(m["name"], m["version"]))
        return str(mv.version)
    except Exception:                 # not registered yet: the stage that registers it comes first
        return None


def step_key(spark, client, step: Step) -> str:
    values, location = [], {f.name for f in dataclasses.fields(JobConfig)}
    for f in dataclasses.fields(step.cfg):
        if f.name in location:          # the lakehouse folder is not an input file
            continue
        v = getattr(step.cfg, f.name)
        values += list(v) if isinstance(v, tuple) else [v]
    strings = sorted({v for v in values if isinstance(v, str)})
    files = {s: _file_state(s) for s in strings}
    key = {"stage": step.stage.name, "config": step.cfg.mlflow_params(),
           "tables": _versions(spark, step.cfg, step.stage.reads),
           "files": {s: state for s, state in files.items() if state is not None},
           "models": {s: _model_version(client, s) for s in strings if s.startswith("models:/")}}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def earlier_run(spark, client, experiment_id: str, step: Step, key: str):
    """The last finished run of this step with this key whose written tables are still there, or None."""
    runs = client.search_runs([experiment_id], f"tags.`{KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
                              max_results=1, order_by=["attributes.start_time DESC"])
    if not runs:
        return None
    wrote = json.loads(runs[0].data.tags.get(WROTE_TAG, "{}"))
    now = _versions(spark, step.cfg, wrote)
    return runs[0] if all(now[t] >= v for t, v in wrote.items()) else None


def _record(client, run_id: str, key: str, report: Report, wrote: dict[str, int]) -> None:
    rows = json.dumps([report.rows_in, report.rows_out])
    for k, v in ((KEY_TAG, key), (ROWS_TAG, rows), (NOTE_TAG, report.note[:4000]), (DETAIL_TAG, report.detail[:7000]),
                 (WROTE_TAG, json.dumps(wrote))):
        client.set_tag(run_id, k, v)


def _recorded(run) -> Report:
    rows_in, rows_out = json.loads(run.data.tags[ROWS_TAG])
    return Report(rows_in, rows_out, run.data.tags.get(NOTE_TAG, ""), run.data.tags.get(DETAIL_TAG, ""))


# ------------------------------------------------------------------------------------------- running

def run(spark, cfg: Config, steps: list[Step] | None = None, progress=sys.stderr, around=None) -> list[StepResult]:
    """Run (or skip) every step in order; a failing step raises after the earlier ones are recorded.
    `around(step)`, when given, is a context manager entered around each step that runs (a benchmark's
    sampler)."""
    import contextlib

    from jobs.runtime.tracking import client_and_experiment, inputs_named, job_run

    steps = plan(cfg) if steps is None else steps
    client, experiment_id = client_and_experiment(cfg)
    results: list[StepResult] = []
    with job_run(cfg, "run", name=f"run {inputs_named(cfg.inputs)} -> {', '.join(cfg.recipes)}") as tracked:
        for i, step in enumerate(steps, 1):
            head = f"[{i}/{len(steps)}] {step.label}"
            started = time.perf_counter()
            key = step_key(spark, client, step)
            before = None if cfg.force else earlier_run(spark, client, experiment_id, step, key)
            if before is not None:
                report = _recorded(before)
                results.append(StepResult(step.label, report, 0.0, before.info.run_id, True))
                print(f"{head}: up to date (inputs unchanged since run {before.info.run_id[:8]}), skipped",
                      file=progress, flush=True)
                continue
            print(f"{head} …", file=progress, flush=True)
            say: Callable[[str], None] = lambda m, h=head: print(f"{h}: {m}", file=progress, flush=True)
            with around(step) if around else contextlib.nullcontext():
                summary = step.stage.run(spark, step.cfg, say)
            report = step.stage.report(summary)
            if summary.get("run_id"):
                _record(client, summary["run_id"], key, report, _versions(spark, step.cfg, step.stage.writes))
            results.append(StepResult(step.label, report, time.perf_counter() - started, summary.get("run_id"), False,
                                      summary))
            print(f"{head} done in {results[-1].seconds:.1f}s", file=progress, flush=True)
        tracked.metrics(stages=len(steps), stages_skipped=sum(r.skipped for r in results))
    return results

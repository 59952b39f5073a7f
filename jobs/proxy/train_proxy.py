"""Proxy: train a small language model on one recipe's corpus at a pinned Delta version.

Reads   gold.corpus (the recipe's rows at --version, the latest by default; Delta time travel) and held-out
        reference text (default: WikiText-2 test from ../shared/data/text, never a training source)
Writes  an MLflow run: params (recipe, fingerprint, table version, tokens, parameters, seed, scale, model
        shape), the Delta table version as a logged input, training loss and learning rate per step,
        held-out bits per byte against tokens seen, the model (safetensors + config), a loss-curve PNG
Re-run  same corpus version, scale and seed give the same final loss on CPU (float tolerance).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.proxy import trainer
from jobs.proxy.trainer import SUBSET_SEED_OFFSET, heldout_domains
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import JobRun, job_run
from schemas import gold
from schemas.contract import validate_identifier
from udfs import lm



def default_heldout(home: str) -> tuple[str, ...]:
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        wiki = root.parent / "shared" / "data" / "text" / "wikitext-2_test.txt"
        if wiki.is_file():
            return (str(wiki),)
    demo = Path(home) / "samples" / "reference-text.txt"
    return (str(demo),) if demo.is_file() else ()


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipe: str
    version: int | None = None          # gold.corpus version; default the latest
    scale: str = "tiny"
    seed: int = 0
    tokens: int | None = None           # budget; default the scale's multiplier x parameters
    max_epochs: float = 8.0             # more repetitions of the corpus than this is an error
    device: str = "auto"
    heldout: tuple[str, ...] = ()       # NAME=PATH or PATH per evaluation domain; default: default_heldout()
    excluded: tuple[str, ...] = ()      # domains reported but left out of the mean (e.g. the classifier's own target)
    subset_tokens: int | None = None    # train on a uniform random subset of the recipe's corpus of this size

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_identifier(self.recipe, "recipe name")
        if self.scale not in trainer.SCALES:
            raise ValueError(f"scale must be one of {', '.join(trainer.SCALES)}")
        if self.max_epochs <= 0:
            raise ValueError("max_epochs must be positive")
        if self.subset_tokens is not None and self.subset_tokens < 1:
            raise ValueError("subset_tokens must be positive")

    def spec(self) -> trainer.TrainSpec:
        return trainer.spec_for(self.scale, seed=self.seed, device=self.device, tokens=self.tokens)

    def heldout_paths(self) -> tuple[str, ...]:
        paths = self.heldout or default_heldout(self.home)
        if not paths:
            raise ValueError("no held-out reference text: pass --heldout FILE (../shared/data is not here and "
                             "the lakehouse has no samples/reference-text.txt)")
        return paths


def corpus_stream(spark: SparkSession, cfg: Config, version: int, budget: int) -> tuple[np.ndarray, dict]:
    """The recipe's documents in a seeded random order as one token stream, and counts. Only as much is read
    as training can use: the first `budget` tokens of that order (with subset_tokens, the first
    subset_tokens: a uniform random subset of that size, repeated as the budget needs). Errors when the
    corpus is empty or would have to be repeated more than max_epochs times for the budget."""
    corpus = tables.read_table(spark, cfg, gold.CORPUS, version).where(F.col("recipe") == cfg.recipe)
    stats = corpus.agg(F.count(F.lit(1)).alias("docs"), F.sum(F.octet_length("text")).alias("bytes"),
                       F.first("recipe_fingerprint").alias("fp")).first()
    docs, size = int(stats.docs), int(stats.bytes or 0)
    if docs == 0:
        raise ValueError(f"gold.corpus version {version} has no documents for recipe {cfg.recipe}: "
                         f"run `lakesift select --recipe {cfg.recipe}` (or pick another --version)")
    available = size + docs                       # one end-of-text token per document
    if cfg.subset_tokens is not None:
        if cfg.subset_tokens > available:
            raise ValueError(f"a random subset of {cfg.subset_tokens:,} tokens is larger than recipe {cfg.recipe}'s "
                             f"corpus ({available:,} tokens)")
        available = cfg.subset_tokens
    epochs = budget / available
    if epochs > cfg.max_epochs:
        raise ValueError(f"recipe {cfg.recipe} kept {docs} documents, {available:,} tokens; a budget of {budget:,} "
                         f"tokens would repeat them {epochs:.1f} times (max_epochs {cfg.max_epochs}): "
                         "lower --tokens or --scale, raise --max-epochs, or use a recipe that keeps more")
    wanted = min(available, budget + budget // 100 + 1)      # + a little: sequences are cut at context + 1
    parts, taken, used_docs = [], 0, 0
    # a random subset is drawn in its own seeded order: not the prefix the whole corpus trains on first
    key = cfg.seed if cfg.subset_tokens is None else cfg.seed + SUBSET_SEED_OFFSET
    ordered = corpus.orderBy(F.xxhash64("doc_id", F.lit(key))).select("text")
    for row in ordered.toLocalIterator():
        encoded = lm.encode_documents([row.text])
        if cfg.subset_tokens is not None and taken + len(encoded) > cfg.subset_tokens:
            encoded = encoded[: cfg.subset_tokens - taken]
        parts.append(encoded)
        taken += len(encoded)
        used_docs += 1
        if taken >= wanted:
            break
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
    return stream, {"documents": docs, "documents_read": used_docs, "corpus_tokens": available,
                    "tokens_read": int(len(stream)), "epochs": round(epochs, 3), "fingerprint": stats.fp}


def log_delta_input(tracked: JobRun, cfg: JobConfig, version: int, fingerprint: str) -> None:
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    if cfg.catalog is None:
        source = DeltaDatasetSource(path=tables.table_location(cfg, "gold", "corpus"), delta_table_version=version)
    else:
        source = DeltaDatasetSource(delta_table_name=tables.table_name(cfg, gold.CORPUS).replace("`", ""),
                                    delta_table_version=version)
    dataset = MetaDataset(source=source, name=f"gold.corpus@v{version}", digest=f"{fingerprint}-v{version}")
    tracked.client.log_inputs(tracked.run_id, datasets=[DatasetInput(
        dataset=dataset._to_mlflow_entity(), tags=[InputTag(key="mlflow.data.context", value="training")])])


def loss_figure(history: trainer.History, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(history.steps, np.asarray(history.loss) / np.log(2), lw=0.8)
    a.set_xlabel("step")
    a.set_ylabel("training loss (bits per byte)")
    b.plot(history.eval_tokens, history.eval_bpb, marker="o", ms=3)
    b.set_xlabel("tokens seen")
    b.set_ylabel("held-out bits per byte")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_model(tracked: JobRun, model, spec: trainer.TrainSpec, history: trainer.History, extra: dict) -> None:
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="lakesift-proxy-") as tmp:
        folder = os.path.join(tmp, "model")
        os.makedirs(folder)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  os.path.join(folder, "model.safetensors"))
        with open(os.path.join(folder, "config.json"), "w") as fh:
            json.dump({"format": "lakesift-byte-lm", "model": spec.model.to_dict(), "train": spec.to_dict(), **extra}, fh, indent=2)
        with open(os.path.join(folder, "history.json"), "w") as fh:
            json.dump({"eval_tokens": history.eval_tokens, "eval_bpb": history.eval_bpb,
                       "eval_bpb_by_domain": history.eval_bpb_by_domain,
                       "tokens_per_second": history.tokens_per_second, "epochs": history.epochs}, fh)
        tracked.file(os.path.join(folder, "model.safetensors"), "model")
        tracked.file(os.path.join(folder, "config.json"), "model")
        tracked.file(os.path.join(folder, "history.json"), "model")


def run(spark: SparkSession, cfg: Config, progress=None) -> dict:
    """progress(message) is called as phases finish and at every held-out evaluation."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    spec = cfg.spec()
    heldout_paths = cfg.heldout_paths()
    domains = heldout_domains(heldout_paths)
    version = cfg.version if cfg.version is not None else tables.table_version(spark, cfg, gold.CORPUS)
    with job_run(cfg, "train_proxy", recipe=cfg.recipe, scale=cfg.scale) as tracked:
        tracked.table_read(gold.CORPUS.fullname, version)
        stream, counts = corpus_stream(spark, cfg, version, spec.tokens)
        device = lm.device_for(spec.device)
        say(f"{counts['documents']:,} documents, {counts['corpus_tokens']:,} tokens of {cfg.recipe} (gold.corpus v{version}) "
            f"read in {time.perf_counter() - started:.0f}s; training {spec.model.parameters():,} parameters for "
            f"{spec.tokens:,} tokens ({spec.steps} steps) on {device}")
        tracked.params(recipe_name=cfg.recipe, recipe_fingerprint=counts["fingerprint"], corpus_version=version,
                       budget_tokens=spec.tokens, model_parameters=spec.model.parameters(), device_used=device,
                       corpus_documents=counts["documents"], corpus_tokens=counts["corpus_tokens"],
                       corpus_epochs=counts["epochs"], steps=spec.steps, batch=spec.batch, lr=spec.lr,
                       heldout_paths=",".join(heldout_paths), heldout_excluded=",".join(cfg.excluded),
                       subset_tokens=cfg.subset_tokens, corpus_documents_read=counts["documents_read"],
                       **{f"model.{k}": v for k, v in spec.model.to_dict().items()})
        if counts["epochs"] > 1:
            tracked.tag(**{"lakesift.warning": f"corpus repeated {counts['epochs']:.2f} times for the token budget"})
        log_delta_input(tracked, cfg, version, counts["fingerprint"])
        pending: list[tuple[int, float, float]] = []

        def on_step(step: int, loss: float, lr: float) -> None:
            pending.append((step, loss, lr))
            if len(pending) >= 50:
                flush()

        def flush() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, s) for s, loss, lr in pending for k, v in (("train_loss", loss), ("lr", lr))]
            tracked.client.log_batch(tracked.run_id, metrics=metrics)
            pending.clear()

        def on_eval(step: int, tokens: int, bpb: float) -> None:
            tracked.metrics(step=tokens, heldout_bpb=bpb)
            say(f"step {step + 1}/{spec.steps}: {tokens:,} tokens, held-out {bpb:.4f} bits per byte "
                f"({time.perf_counter() - started:.0f}s)")

        model, history = trainer.train(spec, stream, domains, on_step, on_eval, excluded=cfg.excluded)
        flush()
        final = history.eval_bpb[-1]
        by_domain = {name: values[-1] for name, values in history.eval_bpb_by_domain.items()}
        tracked.metrics(**{f"final_heldout_bpb.{name}": v for name, v in by_domain.items()})
        tracked.metrics(final_heldout_bpb=final, final_train_loss=history.loss[-1], tokens_trained=history.eval_tokens[-1],
                        tokens_per_second=history.tokens_per_second, epochs=history.epochs)
        extra = {"recipe": cfg.recipe, "recipe_fingerprint": counts["fingerprint"], "corpus_version": version,
                 "scale": cfg.scale, "seed": cfg.seed}
        save_model(tracked, model, spec, history, extra)
        tracked.figure(loss_figure(history, f"{cfg.recipe} ({cfg.scale}, seed {cfg.seed})"), "loss_curve.png")
        return {"run_id": tracked.run_id, "recipe": cfg.recipe, "fingerprint": counts["fingerprint"], "corpus_version": version,
                "scale": cfg.scale, "seed": cfg.seed, "parameters": spec.model.parameters(), "tokens": history.eval_tokens[-1],
                "final_heldout_bpb": final, "final_train_loss": history.loss[-1], "eval_tokens": history.eval_tokens,
                "eval_bpb": history.eval_bpb, "eval_bpb_by_domain": history.eval_bpb_by_domain,
                "final_heldout_bpb_by_domain": by_domain, "tokens_per_second": history.tokens_per_second,
                "device": device, "epochs": history.epochs, "corpus_epochs": counts["epochs"],
                "corpus_tokens": counts["corpus_tokens"], "subset_tokens": cfg.subset_tokens}

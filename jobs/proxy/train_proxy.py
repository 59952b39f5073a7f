"""Proxy: train a small language model on one recipe's corpus at a pinned Delta version.

Reads   the export of gold.corpus (the recipe's rows at --version, the latest by default) as `export` writes
        it under <home>/exports/<recipe>/v<version>, exporting first when it is missing; and held-out
        reference text (--heldout, else $LAKESIFT_HELDOUT; never a training source)
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

import numpy as np
from pyspark.sql import SparkSession

from jobs.proxy import trainer
from jobs.proxy.trainer import SUBSET_SEED_OFFSET, heldout_domains
from jobs.runtime import tables
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import JobRun, job_run
from schemas import gold
from schemas.contract import validate_identifier
from udfs import lm



def default_heldout() -> tuple[str, ...]:
    """$LAKESIFT_HELDOUT: held-out text files ([NAME=]FILE), separated like PATH."""
    return tuple(p for p in os.environ.get("LAKESIFT_HELDOUT", "").split(os.pathsep) if p)


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    recipe: str = option(help="the recipe whose corpus trains the model")
    version: int | None = option(None, "gold.corpus version (default: the latest)")
    scale: str = option("tiny", "model size and token budget preset (tiny: CPU minutes; others: GPU)",
                        choices=tuple(trainer.SCALES))
    seed: int = option(0, "seed of initialisation and data order")
    tokens: int | None = option(None, "token budget (default: the scale's multiplier x parameters)")
    max_epochs: float = option(trainer.MAX_EPOCHS, "most repetitions of the corpus allowed")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))
    heldout: tuple[str, ...] = option((), "held-out evaluation domains, each measured and reported on its own "
                                     "(default: $LAKESIFT_HELDOUT)", metavar="[NAME=]FILE")
    excluded: tuple[str, ...] = option((), "held-out domains reported but left out of the deciding mean",
                                       flag="--exclude", metavar="DOMAIN")
    subset_tokens: int | None = option(None, "train on a uniform random subset of the corpus of this many tokens")

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
        paths = self.heldout or default_heldout()
        if not paths:
            raise ValueError("no held-out reference text: pass --heldout [NAME=]FILE, or set LAKESIFT_HELDOUT")
        return paths


def export_folder(spark: SparkSession, cfg: Config, version: int, say) -> str:
    """The export of the recipe's corpus at `version` (<home>/exports/<recipe>/v<version>, as `export` writes
    it), exported now when missing: arms and seeds share it, and training reads the shards, not Spark."""
    from jobs.gold import export_shards

    folder = f"{cfg.home}/exports/{cfg.recipe}/v{version}"
    if not os.path.isfile(os.path.join(folder, "manifest.json")):
        say(f"exporting {cfg.recipe} (gold.corpus v{version}) to {folder}")
        export_shards.run(spark, export_shards.Config(**cfg.location(), recipe=cfg.recipe, version=version))
    return folder


def read_manifest(folder: str, recipe: str | None = None) -> dict:
    """An export's manifest.json, checked: our format, the recipe expected, every shard present."""
    path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(path):
        raise ValueError(f"{folder} holds no manifest.json: run `lakesift export --recipe RECIPE` first")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    if not isinstance(manifest, dict) or manifest.get("format") not in ("jsonl.gz", "parquet") or \
            not isinstance(manifest.get("shards"), list):
        raise ValueError(f"{path} is not a lakesift export manifest")
    if recipe is not None and manifest.get("recipe") != recipe:
        raise ValueError(f"{path} exports recipe {manifest.get('recipe')!r}, not {recipe!r}")
    for shard in manifest["shards"]:
        if not shard.get("documents"):
            continue                              # an empty shard has no file
        name = str(shard.get("file", ""))
        if os.path.basename(name) != name or not os.path.isfile(os.path.join(folder, name)):
            raise ValueError(f"{path}: shard {name!r} is missing or not a plain file name")
    return manifest


def _shard_table(folder: str, manifest: dict, shard: dict, columns: list[str]):
    """One shard's columns as an Arrow table (gzip is decompressed by pyarrow's reader, one block at a time)."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    path = os.path.join(folder, shard["file"])
    if manifest["format"] == "parquet":
        return pq.read_table(path, columns=columns)
    return pj.read_json(path).select(columns)


def corpus_stream(cfg: Config, folder: str, manifest: dict, budget: int) -> tuple[np.ndarray, dict]:
    """The export's documents in a seeded random order as one token stream, and counts. Only as much text
    is kept as training can use: the first `budget` tokens of that order (with subset_tokens, the first
    subset_tokens: a uniform random subset of that size, repeated as the budget needs). The order is a
    stable hash of (doc_id, seed), so it does not depend on how the export was sharded. Errors when the
    corpus is empty or would have to be repeated more than max_epochs times for the budget."""
    import pyarrow.compute as pc

    from udfs.hashing import fmix64, word_hashes

    # a random subset is drawn in its own seeded order: not the prefix the whole corpus trains on first
    key = cfg.seed if cfg.subset_tokens is None else cfg.seed + SUBSET_SEED_OFFSET
    keys, sizes, where = [], [], []
    for i, shard in enumerate(manifest["shards"]):
        if not shard.get("documents"):
            continue
        t = _shard_table(folder, manifest, shard, ["doc_id", "text"])
        with np.errstate(over="ignore"):
            keys.append(fmix64(word_hashes(t.column("doc_id").combine_chunks()) ^ np.uint64(key)))
        sizes.append(pc.fill_null(pc.binary_length(t.column("text")), 0).to_numpy().astype(np.int64) + 1)
        where.append(np.stack([np.full(t.num_rows, i), np.arange(t.num_rows)], axis=1))
    docs = int(sum(len(k) for k in keys))
    if docs == 0:
        raise ValueError(f"the export {folder} of recipe {cfg.recipe} holds no documents: its recipe kept none "
                         f"(see `lakesift select --recipe {cfg.recipe}`)")
    order = np.argsort(np.concatenate(keys), kind="stable")
    sizes_all, where_all = np.concatenate(sizes)[order], np.concatenate(where)[order]
    available = int(sizes_all.sum())               # bytes plus one end-of-text token per document
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
    used = int(np.searchsorted(np.cumsum(sizes_all), wanted) + 1)
    chosen = where_all[:used]
    texts: dict[tuple[int, int], str] = {}
    for i in np.unique(chosen[:, 0]):
        rows = chosen[chosen[:, 0] == i, 1]
        column = _shard_table(folder, manifest, manifest["shards"][int(i)], ["text"]).column("text").take(rows)
        texts.update(zip(((int(i), int(r)) for r in rows), column.to_pylist()))
    stream = lm.encode_documents([texts[(int(i), int(r))] for i, r in chosen])
    if cfg.subset_tokens is not None:
        stream = stream[: cfg.subset_tokens]
    return stream, {"documents": docs, "documents_read": used, "corpus_tokens": available,
                    "tokens_read": int(len(stream)), "epochs": round(epochs, 3),
                    "fingerprint": manifest.get("recipe_fingerprint", "")}


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
    with job_run(cfg, "train_proxy", name=f"train-proxy {cfg.recipe} {cfg.scale} seed {cfg.seed}", recipe=cfg.recipe, scale=cfg.scale) as tracked:
        tracked.table_read(gold.CORPUS.fullname, version)
        folder = export_folder(spark, cfg, version, say)
        stream, counts = corpus_stream(cfg, folder, read_manifest(folder, cfg.recipe), spec.tokens)
        tracked.params(export_folder=folder)
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


def report(s: dict) -> Report:
    return Report(None, None,
                  f"run {s['run_id']}: {s['parameters']:,}-parameter model, {s['tokens']:,} tokens of {s['recipe']} "
                  f"(gold.corpus v{s['corpus_version']}, {s['epochs']:.2f} epochs) on {s['device']} at "
                  f"{s['tokens_per_second']:,.0f} tokens/s; held-out {s['final_heldout_bpb']:.4f} bits per byte\n"
                  f"evaluate it: lakesift eval-proxy --run {s['run_id']}")


STAGE = Stage("train-proxy", "train a proxy language model on a recipe's corpus (MLflow run)", Config, run,
              reads=(gold.CORPUS.fullname, "exports"), writes=("exports",), report=report)

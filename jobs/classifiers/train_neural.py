"""Classifier: neural scorers, trained and registered in MLflow.

--kind embedding   a logistic head on sentence-encoder embeddings (all-MiniLM-L6-v2 by default), trained on
                   the same positives/negatives and the same held-out split as train-quality; a fastText
                   classifier is trained on that split too, so both held-out ROC-AUCs are logged side by side
--kind reference   a byte-level language model trained on reference text with the proxy trainer: its bits
                   per byte is the reference loss of `score-neural --scorer reference|learnability`
Reads   positives/negatives as train-quality does (files, archives, JSONL, tables)
Writes  an MLflow run (params, inputs, held-out metrics, the model as safetensors + config.json) and a model
        version registered as NAME with the alias `champion`
Re-run  same inputs and seed give the same model.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np
from pyspark.sql import SparkSession

from jobs.classifiers.train_quality import TrainingConfig, load_texts, register, split
from jobs.proxy import trainer
from jobs.runtime.config import Report, Stage, option
from jobs.runtime.tracking import job_run
from udfs import fasttext as ft
from udfs import lm, neural

KINDS = ("embedding", "reference")


@dataclass(frozen=True, kw_only=True)
class Config(TrainingConfig):
    kind: str = option(help="embedding: logistic head on sentence embeddings, compared with fastText on the same "
                            "split; reference: byte-level LM on --positives (its loss scores documents)", choices=KINDS)
    encoder: str | None = option(None, "sentence-transformers folder (default: all-MiniLM-L6-v2 from the pinned wheel)")
    max_examples: int = option(20_000, "per class")
    scale: str = option("tiny", "reference LM size", choices=tuple(trainer.SCALES))
    tokens: int | None = option(None, "reference LM token budget (default: the scale's)")
    batch_size: int = option(neural.RunnerOptions.batch_size, "texts per forward pass")
    max_tokens: int = option(neural.RunnerOptions.max_tokens, "tokens scored per text: encoder word pieces, or bytes "
                                                              "for the byte LMs")
    device: str = option("auto", "auto: CUDA when present (bf16), else CPU; cuda fails without a GPU",
                         choices=("auto", "cuda", "cpu"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if self.scale not in trainer.SCALES:
            raise ValueError(f"scale must be one of {', '.join(trainer.SCALES)}")


def _embedding(tracked, cfg: Config, pos, neg, folder: str) -> dict:
    from safetensors.numpy import save_file

    pos_train, pos_test = split(pos, cfg.holdout, cfg.seed)
    neg_train, neg_test = split(neg, cfg.holdout, cfg.seed + 1)
    encoder = cfg.encoder or neural.default_encoder_path()
    opts = neural.RunnerOptions(batch_size=cfg.batch_size, max_tokens=cfg.max_tokens, device=cfg.device)
    train_x = neural.embed(pos_train + neg_train, encoder, opts)
    test_x = neural.embed(pos_test + neg_test, encoder, opts)
    train_y = np.array([1.0] * len(pos_train) + [0.0] * len(neg_train))
    test_y = np.array([True] * len(pos_test) + [False] * len(neg_test))
    head = neural.train_head(train_x, train_y, seed=cfg.seed)
    ours = ft.classification_metrics(test_y, head(test_x.astype(np.float64)))
    with tempfile.TemporaryDirectory() as tmp:                                   # fastText on the same split
        ft.train(pos_train, neg_train, ft.TrainParams(dim=64, bucket=200_000, seed=cfg.seed), os.path.join(tmp, "f.bin"))
        fasttext_scores = ft.positive_probability(ft.load(os.path.join(tmp, "f.bin")), pos_test + neg_test)
        ft.load.cache_clear()
    keep = ~np.isnan(fasttext_scores)
    baseline = ft.classification_metrics(test_y[keep], fasttext_scores[keep])
    save_file({"weight": head.weight.astype(np.float32), "bias": np.array([head.bias], dtype=np.float32)},
              os.path.join(folder, "head.safetensors"))
    sha = neural.file_sha256(os.path.join(encoder, "model.safetensors"))
    config = {"format": "lakesift-embedding-head", "kind": "embedding", "encoder_path": None if not cfg.encoder else encoder,
              "encoder_sha256": sha, "dimensions": int(train_x.shape[1]), "max_tokens": cfg.max_tokens,
              "score": "P(reference quality)"}
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    tracked.params(encoder_folder=encoder, encoder_sha256=sha, embedding_dimensions=int(train_x.shape[1]))
    tracked.metrics(**{f"holdout_{k}": v for k, v in ours.items()},
                    **{f"fasttext_same_split_{k}": v for k, v in baseline.items()},
                    train_positives=len(pos_train), train_negatives=len(neg_train))
    return {"roc_auc": ours["roc_auc"], "fasttext_roc_auc": baseline["roc_auc"], "examples": ours["examples"],
            "precision": ours["precision"], "recall": ours["recall"]}


def _reference(tracked, cfg: Config, pos, folder: str) -> dict:
    from safetensors.torch import save_file

    train_texts, test_texts = split(pos, cfg.holdout, cfg.seed)
    spec = trainer.spec_for(cfg.scale, seed=cfg.seed, device=cfg.device, tokens=cfg.tokens)
    model, history = trainer.train(spec, lm.encode_documents(train_texts), test_texts,
                                   on_eval=lambda step, tokens, bpb: tracked.metrics(step=tokens, heldout_bpb=bpb))
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump({"format": "lakesift-byte-lm", "kind": "reference", "model": spec.model.to_dict(),
                   "train": spec.to_dict()}, fh, indent=2)
    tracked.params(model_parameters=spec.model.parameters(), budget_tokens=spec.tokens)
    tracked.metrics(final_heldout_bpb=history.eval_bpb[-1], tokens_per_second=history.tokens_per_second)
    return {"heldout_bpb": history.eval_bpb[-1], "tokens": history.eval_tokens[-1]}


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "train_neural", name=f"train-neural {cfg.kind} {cfg.name}", model=cfg.name, kind=cfg.kind) as tracked:
        pos, pos_infos = load_texts(spark, cfg, cfg.positives, cfg.max_examples, cfg.seed)
        if len(pos) < 10:
            raise ValueError(f"only {len(pos)} positive documents of {cfg.min_words}+ words in {', '.join(cfg.positives)}")
        tracked.params(**{f"input.positives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(pos_infos)})
        with tempfile.TemporaryDirectory(prefix="lakesift-neural-") as tmp:
            folder = os.path.join(tmp, "model")
            os.makedirs(folder)
            if cfg.kind == "embedding":
                neg, neg_infos = load_texts(spark, cfg, cfg.negatives, min(cfg.max_examples, len(pos)), cfg.seed + 1)
                if len(neg) < 10:
                    raise ValueError(f"only {len(neg)} negative documents in {', '.join(cfg.negatives)}")
                tracked.params(**{f"input.negatives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(neg_infos)})
                summary = _embedding(tracked, cfg, pos, neg, folder)
            else:
                summary = _reference(tracked, cfg, pos, folder)
            for name in sorted(os.listdir(folder)):
                tracked.file(os.path.join(folder, name), "model")
        info = tracked.client.get_run(tracked.run_id).info
        version = register(tracked.client, tracked.run_id, info.artifact_uri, cfg.name, cfg.alias,
                           f"lakesift neural scorer ({cfg.kind})")
        return {"run_id": tracked.run_id, "kind": cfg.kind, "model": cfg.name, "version": version, "alias": cfg.alias, **summary}


def report(s: dict) -> Report:
    if s["kind"] == "embedding":
        detail = (f"held out: ROC-AUC {s['roc_auc']:.3f} (fastText on the same split {s['fasttext_roc_auc']:.3f}), "
                  f"precision {s['precision']:.3f}, recall {s['recall']:.3f} ({s['examples']} documents)")
    else:
        detail = f"held-out {s['heldout_bpb']:.4f} bits per byte after {s['tokens']:,} tokens"
    return Report(None, None, f"models:/{s['model']}@{s['alias']} = version {s['version']} ({s['kind']}): {detail}; "
                              f"MLflow run {s['run_id']}")


STAGE = Stage("train-neural", "train a neural scorer (embedding classifier head or reference LM) and register it",
              Config, lambda spark, cfg, progress: run(spark, cfg), reads=("silver.documents",), writes=("models",),
              report=report)

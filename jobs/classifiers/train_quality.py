"""Classifier: a fastText quality classifier from reference text (positives) and crawled text (negatives).

Reads   positives: files (text blocks, zip, JSONL) or a table; negatives: the same, default a seeded sample
        of silver.documents as large as the positives
Writes  an MLflow run (params, the files / Delta versions trained on, held-out precision, recall and
        ROC-AUC, the model file) and a model version registered as NAME with the alias `champion`
Re-run  same inputs, parameters and seed give the same model (fastText trains on one thread).
"""
from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass

import numpy as np
from pyspark.sql import SparkSession

from jobs.classifiers import sources
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import job_run
from schemas.contract import validate_identifier, validate_model_name
from udfs import fasttext as ft

MODEL_FILE = "model.bin"
DESCRIPTOR = "lakesift-model.json"


@dataclass(frozen=True, kw_only=True)
class Config(JobConfig):
    name: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ("silver.documents",)
    unit: str = "block"                 # text files: one document per blank-line block, or per file
    min_words: int = 10                 # shorter documents are not training examples
    max_examples: int = 100_000         # per class, a seeded sample beyond this
    holdout: float = 0.1                # fraction of each class kept for evaluation
    seed: int = 0
    lr: float = 0.1
    epoch: int = 5
    dim: int = 64                       # DCLM used fastText's 100 and 2M buckets; these keep the model ~50 MB
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 200_000
    loss: str = "softmax"
    alias: str = "champion"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_model_name(self.name)
        validate_identifier(self.alias, "model alias")
        if not self.positives:
            raise ValueError("train-quality needs --positives")
        if self.unit not in ("block", "file"):
            raise ValueError("unit must be block or file")
        if not 0 < self.holdout < 0.5:
            raise ValueError("holdout must be between 0 and 0.5")
        if self.max_examples < 10:
            raise ValueError("max_examples must be at least 10")
        self.train_params()

    def train_params(self) -> ft.TrainParams:
        return ft.TrainParams(lr=self.lr, epoch=self.epoch, dim=self.dim, word_ngrams=self.word_ngrams,
                              min_count=self.min_count, bucket=self.bucket, loss=self.loss, seed=self.seed)


def load_texts(spark: SparkSession, cfg: Config, specs: tuple[str, ...], limit: int, seed: int) -> tuple[list[str], list]:
    texts, infos = [], []
    files = [s for s in specs if not sources.is_table(s)]
    if files:
        got, file_infos = sources.read_files(files, cfg.unit, cfg.min_words, limit, seed)
        texts += got
        infos += file_infos
    for table in (s for s in specs if sources.is_table(s)):
        got, info = sources.read_table_texts(spark, cfg, table, limit, seed, cfg.min_words)
        texts += got
        infos.append(info)
    if len(texts) > limit:
        texts = random.Random(seed).sample(texts, limit)
    return texts, infos


def split(texts: list[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(round(len(texts) * holdout)))
    return [texts[i] for i in order[cut:]], [texts[i] for i in order[:cut]]


def register(client, run_id: str, artifact_uri: str, name: str, alias: str, description: str) -> str:
    """A new version of registered model `name` from the run's `model` artifacts, given `alias`."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=description)
    except MlflowException:
        pass                                            # already registered
    version = client.create_model_version(name, source=f"{artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def run(spark: SparkSession, cfg: Config) -> dict:
    with job_run(cfg, "train_quality", model=cfg.name) as tracked:
        positives, pos_infos = load_texts(spark, cfg, cfg.positives, cfg.max_examples, cfg.seed)
        if len(positives) < 10:
            raise ValueError(f"only {len(positives)} positive documents of {cfg.min_words}+ words in {', '.join(cfg.positives)}")
        negatives, neg_infos = load_texts(spark, cfg, cfg.negatives, min(cfg.max_examples, len(positives)), cfg.seed + 1)
        if len(negatives) < 10:
            raise ValueError(f"only {len(negatives)} negative documents in {', '.join(cfg.negatives)}")
        tracked.params(**{f"input.positives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(pos_infos)},
                       **{f"input.negatives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(neg_infos)})
        pos_train, pos_test = split(positives, cfg.holdout, cfg.seed)
        neg_train, neg_test = split(negatives, cfg.holdout, cfg.seed + 1)
        with tempfile.TemporaryDirectory(prefix="lakesift-train-") as tmp:
            model_dir = os.path.join(tmp, "model")
            os.makedirs(model_dir)
            model_path = os.path.join(model_dir, MODEL_FILE)
            info = ft.train(pos_train, neg_train, cfg.train_params(), model_path)
            model = ft.load(model_path)
            scores = ft.positive_probability(model, pos_test + neg_test)
            labels = np.array([True] * len(pos_test) + [False] * len(neg_test))
            keep = ~np.isnan(scores)
            metrics = ft.classification_metrics(labels[keep], scores[keep])
            descriptor = {"format": "fasttext", "file": MODEL_FILE, "positive_label": ft.POSITIVE,
                          "labels": info["labels"], "score": "P(__label__hq)", "name": cfg.name}
            with open(os.path.join(model_dir, DESCRIPTOR), "w") as fh:
                json.dump(descriptor, fh, indent=2)
            tracked.file(model_path, "model")
            tracked.file(os.path.join(model_dir, DESCRIPTOR), "model")
            ft.load.cache_clear()
        tracked.metrics(**{f"holdout_{k}": v for k, v in metrics.items()},
                        train_positives=len(pos_train), train_negatives=len(neg_train), vocabulary=info["words"],
                        learning_rate_used=info["lr"])
        run_info = tracked.client.get_run(tracked.run_id).info
        version = register(tracked.client, tracked.run_id, run_info.artifact_uri, cfg.name, cfg.alias,
                           "lakesift fastText quality classifier: P(__label__hq)")
        tracked.tag(**{"lakesift.registered_model": f"models:/{cfg.name}/{version}"})
        return {"run_id": tracked.run_id, "model": cfg.name, "version": version, "alias": cfg.alias,
                "train_positives": len(pos_train), "train_negatives": len(neg_train), **metrics}

"""Classifier: the combined quality model (udfs/quality.py) from reference text (positives), crawled text
(negatives) and, when given, human quality labels.

Reads   positives: files (text blocks, zip, JSONL) or a table; negatives: the same, default a seeded sample
        of silver.documents as large as the positives; --labels: JSONL lines {"text", "label": 0|1}
Trains  the components on positives versus negatives (minus a held-out part of each class): a fastText
        classifier, reference and web word n-gram models; then the combiner that weighs every component's
        features: on the human labels when given (its regularisation chosen by 5-fold cross-validation,
        and its cross-validated ROC-AUC logged), else on the held-out reference-versus-web examples
Writes  an MLflow run (params, the files / Delta versions trained on, held-out ROC-AUC on reference versus
        web, the labels' cross-validated ROC-AUC and interval, the model folder) and a model version
        registered as NAME with the alias `champion`
Re-run  same inputs, parameters and seed give the same model (fastText trains on one thread; the n-gram
        models and the combiner are exact computations).
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
from jobs.runtime.config import JobConfig, Report, Stage, option
from jobs.runtime.tracking import job_run
from schemas.contract import validate_identifier, validate_model_name
from udfs.hashing import file_sha256
from udfs import fasttext as ft
from udfs import quality as Q

MODEL_FILE = Q.FASTTEXT_FILE
DESCRIPTOR = Q.DESCRIPTOR


@dataclass(frozen=True, kw_only=True)
class TrainingConfig(JobConfig):
    """What every model trained on reference text versus crawled text shares (train-quality, train-neural)."""
    name: str = option(help="registered model name (gets the alias --alias)")
    positives: tuple[str, ...] = option(help="reference-quality text: text files, folders, zip archives, JSONL "
                                             "(text field) or a table", metavar="PATH|TABLE")
    negatives: tuple[str, ...] = option(("silver.documents",), "crawled text (a table: a seeded sample as large "
                                                               "as the positives)", metavar="PATH|TABLE")
    unit: str = option("block", "text files: one document per blank-line-separated block, or per file",
                       choices=("block", "file"))
    min_words: int = option(10, "shorter documents are not training examples")
    holdout: float = option(0.1, "held-out fraction per class")
    seed: int = option(0, "seed of sampling, splits and training")
    alias: str = option("champion", "model alias set on the new version")

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_model_name(self.name)
        validate_identifier(self.alias, "model alias")
        if not self.positives:
            raise ValueError("training needs --positives")
        if self.unit not in ("block", "file"):
            raise ValueError("unit must be block or file")
        if not 0 < self.holdout < 0.5:
            raise ValueError("holdout must be between 0 and 0.5")


@dataclass(frozen=True, kw_only=True)
class Config(TrainingConfig):
    max_examples: int = option(100_000, "per class, a seeded sample beyond this")
    # DCLM used fastText's dim 100 and 2M buckets; these keep the model ~50 MB.
    lr: float = option(0.1, "fastText learning rate")
    epoch: int = option(5, "fastText epochs")
    dim: int = option(64, "fastText vector size")
    word_ngrams: int = option(2, "fastText word n-grams")
    min_count: int = option(1, "fastText minimal word count")
    bucket: int = option(200_000, "fastText hash buckets")
    loss: str = option("softmax", "fastText loss", choices=("softmax", "hs"))
    labels: str | None = option(None, 'human quality judgments, lines {"text": ..., "label": 0|1} (at least 20, '
                                      "both classes): the combiner learns from them (default: from held-out "
                                      "reference-versus-web examples)", metavar="FILE.jsonl")
    components: tuple[str, ...] = option(Q.DEFAULT_COMPONENTS, f"of {', '.join(Q.COMPONENTS)} (embedding needs "
                                         "MiniLM: slow on CPU); commas or spaces between them")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "components", tuple(c.strip() for part in self.components
                                                     for c in part.split(",") if c.strip()))
        Q.validate_components(self.components)
        if self.labels is not None:
            Q.read_labels(self.labels)          # every problem of the file is reported before any training
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


def _train_embedding_head(folder: str, positives: list[str], negatives: list[str], seed: int) -> None:
    from safetensors.numpy import save_file

    from udfs import neural

    opts = neural.RunnerOptions()
    vectors = neural.embed(positives + negatives, neural.default_encoder_path(), opts)
    head = neural.train_head(vectors, np.array([1.0] * len(positives) + [0.0] * len(negatives)), seed=seed)
    save_file({"weight": head.weight.astype(np.float64), "bias": np.array([head.bias])},
              os.path.join(folder, Q.EMBEDDING_HEAD))


def run(spark: SparkSession, cfg: Config) -> dict:
    from udfs.reference_lm import NgramLM

    label_texts, label_values = Q.read_labels(cfg.labels) if cfg.labels else ([], None)
    with job_run(cfg, "train_quality", name=f"train-quality {cfg.name}", model=cfg.name) as tracked:
        positives, pos_infos = load_texts(spark, cfg, cfg.positives, cfg.max_examples, cfg.seed)
        if len(positives) < 10:
            raise ValueError(f"only {len(positives)} positive documents of {cfg.min_words}+ words in {', '.join(cfg.positives)}")
        negatives, neg_infos = load_texts(spark, cfg, cfg.negatives, min(cfg.max_examples, len(positives)), cfg.seed + 1)
        if len(negatives) < 10:
            raise ValueError(f"only {len(negatives)} negative documents in {', '.join(cfg.negatives)}")
        tracked.params(**{f"input.positives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(pos_infos)},
                       **{f"input.negatives.{i}": f"{s.kind}:{s.detail}" for i, s in enumerate(neg_infos)},
                       components=",".join(cfg.components))
        if cfg.labels:
            tracked.params(**{"input.labels": f"{os.path.basename(cfg.labels)}@{file_sha256(cfg.labels)[:16]}",
                              "labels.rows": len(label_values), "labels.positive": int(label_values.sum())})
        pos_train, pos_test = split(positives, cfg.holdout, cfg.seed)
        neg_train, neg_test = split(negatives, cfg.holdout, cfg.seed + 1)
        metrics: dict = {}
        with tempfile.TemporaryDirectory(prefix="lakesift-train-") as tmp:
            model_dir = os.path.join(tmp, "model")
            os.makedirs(model_dir)
            if "fasttext" in cfg.components:
                info = ft.train(pos_train, neg_train, cfg.train_params(), os.path.join(model_dir, MODEL_FILE))
                metrics.update(vocabulary=info["words"], learning_rate_used=info["lr"])
            if "reference_lm" in cfg.components:
                reference, web = NgramLM.train(pos_train), NgramLM.train(neg_train)
                reference.save(os.path.join(model_dir, Q.REFERENCE_LM))
                web.save(os.path.join(model_dir, Q.WEB_LM))
                metrics.update(reference_lm_tokens=reference.header["tokens"], web_lm_tokens=web.header["tokens"])
            if "embedding" in cfg.components:
                _train_embedding_head(model_dir, pos_train, neg_train, cfg.seed)
            # the combiner: fitted to the labels, or to the held-out reference-versus-web examples
            descriptor = {"format": Q.FORMAT, "name": cfg.name, "components": list(cfg.components),
                          "fasttext": MODEL_FILE if "fasttext" in cfg.components else None,
                          "score": "calibrated P(good quality)", "heuristics": "udfs.heuristics",
                          "combiner": Q.COMBINER, "trained_on": "labels" if cfg.labels else "reference_vs_web"}
            with open(os.path.join(model_dir, DESCRIPTOR), "w") as fh:
                json.dump(descriptor, fh, indent=2)
            model = Q.QualityModel(model_dir)                               # the components, no combiner yet
            held_out = pos_test + neg_test
            held_y = np.array([1] * len(pos_test) + [0] * len(neg_test))
            names, held_x = model.features(held_out)
            if cfg.labels:
                names, label_x = model.features(label_texts)
                oof = Q.cross_validated_scores(label_x, label_values, names, seed=cfg.seed)
                low, high = Q.bootstrap_interval(label_values, oof, seed=cfg.seed)
                metrics.update(labels_cv_roc_auc=Q.roc_auc(label_values, oof), labels_cv_roc_auc_low=low,
                               labels_cv_roc_auc_high=high)
                combiner = Q.fit(label_x, label_values, names, "labels", seed=cfg.seed)
            else:
                oof = Q.cross_validated_scores(held_x, held_y, names, seed=cfg.seed)
                metrics.update(reference_vs_web_cv_roc_auc=Q.roc_auc(held_y, oof))
                combiner = Q.fit(held_x, held_y, names, "reference_vs_web", seed=cfg.seed)
            with open(os.path.join(model_dir, Q.COMBINER), "w") as fh:
                json.dump(combiner.to_json(), fh, indent=2)
            scores = combiner.predict(held_x)
            metrics.update(ft.classification_metrics(held_y.astype(bool), scores))
            for name, weight in zip(combiner.names, combiner.coef):
                metrics[f"weight.{name}"] = weight
            tracked.params(combiner_c=combiner.c, combiner_trained_on=combiner.trained_on)
            tracked.file(model_dir, "model")
            ft.load.cache_clear()
        tracked.metrics(**{(k if k.startswith(("weight.", "labels_", "reference_", "web_", "vocabulary", "learning"))
                            else f"holdout_{k}"): v for k, v in metrics.items()},
                        train_positives=len(pos_train), train_negatives=len(neg_train))
        run_info = tracked.client.get_run(tracked.run_id).info
        version = register(tracked.client, tracked.run_id, run_info.artifact_uri, cfg.name, cfg.alias,
                           f"lakesift quality model ({', '.join(cfg.components)}): calibrated P(good)")
        tracked.tag(**{"lakesift.registered_model": f"models:/{cfg.name}/{version}"})
        return {"run_id": tracked.run_id, "model": cfg.name, "version": version, "alias": cfg.alias,
                "train_positives": len(pos_train), "train_negatives": len(neg_train),
                "components": list(cfg.components), "trained_on": combiner.trained_on, **metrics}


def report(s: dict) -> Report:
    line = (f"models:/{s['model']}@{s['alias']} = version {s['version']} ({', '.join(s['components'])}): components "
            f"trained on {s['train_positives']} positive and {s['train_negatives']} negative documents; held out "
            f"reference versus web: ROC-AUC {s['roc_auc']:.3f} ({s['examples']} documents)")
    if s["trained_on"] == "labels":
        line += (f"; combiner fitted to human labels: cross-validated ROC-AUC {s['labels_cv_roc_auc']:.3f} "
                 f"(95% interval {s['labels_cv_roc_auc_low']:.3f}-{s['labels_cv_roc_auc_high']:.3f})")
    return Report(s["train_positives"] + s["train_negatives"], None, line + f"; MLflow run {s['run_id']}")


STAGE = Stage("train-quality", "train the quality model (fastText, reference LMs, heuristics, length; optionally "
              "fitted to human labels) and register it in MLflow", Config, lambda spark, cfg, progress: run(spark, cfg),
              reads=("silver.documents",), writes=("models",), report=report)

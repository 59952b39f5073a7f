"""Neural scoring speed: the scoring core (udfs/neural.py) against a bare torch loop over the same texts,
and the whole score-neural job through Spark on CPU.

Texts: real documents from ../shared/data/text (WikiText-2 validation paragraphs, CCNet head documents, State of
the Union addresses), a seeded sample of BENCH_NEURAL_DOCS (default 1024).
MiniLM (all-MiniLM-L6-v2, 256 tokens, batch 64):
  bare   the loop a user would write: tokenizer -> encoder -> mean pool -> normalise -> head, in input order,
         under inference_mode with bf16 autocast on CUDA
  core   neural.scorer("embedding"): the same plus length-sorted micro-batches and input-order reassembly
Reference LM (the tiny proxy preset, 256 bytes per text): the core only.
Spark (where pyspark is installed): the 990 real pages of the trafilatura benchmark wrapped in WARC records,
ingested and extracted; `train-neural --kind embedding` with the reference text as positives against them
(held-out ROC-AUC beside fastText's on the same split); `score-neural --scorer embedding` over them, local[*],
including the job's fixed costs (MLflow, Delta write).
Target: core overhead <= 20% over bare; on an H100 >= 2,000 documents/s for MiniLM at 256 tokens.
Runs without Spark on the GPU machine: `python -m bench.neural`.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, need_shared, report

DOCS = int(os.environ.get("BENCH_NEURAL_DOCS", "1024"))
BATCH, MAX_TOKENS = 64, 256


def sample_texts(n: int) -> list[str]:
    from jobs.classifiers.sources import read_files

    need_shared()
    text = SHARED / "text"
    docs, _ = read_files([str(text / "wikitext-2_valid.txt"), str(text / "ccnet"), str(text / "nltk_state_union.zip")],
                         "block", 20, limit=n, seed=0)
    return docs


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bare_minilm(texts, tokenizer, model, head, device) -> np.ndarray:
    import torch

    from udfs import lm

    out = []
    for i in range(0, len(texts), BATCH):
        enc = tokenizer(texts[i:i + BATCH], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt").to(device)
        with torch.inference_mode(), lm.autocast(device):
            hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1)
        out.append(head(pooled.cpu().numpy().astype(np.float64)))
    if device == "cuda":
        torch.cuda.synchronize()
    return np.concatenate(out)


def saved_head(folder: Path, dims: int) -> str:
    """A random linear head in train-neural's format: speed does not depend on the weights."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"weight": rng.normal(size=dims).astype(np.float32), "bias": np.zeros(1, np.float32)}, str(folder / "head.safetensors"))
    (folder / "config.json").write_text(json.dumps({"format": "lakesift-embedding-head", "kind": "embedding", "encoder_path": None}))
    return str(folder)


def saved_lm(folder: Path) -> str:
    import torch
    from safetensors.torch import save_file

    from jobs.proxy.trainer import SCALES
    from udfs import lm

    cfg = SCALES["tiny"]["model"]
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lm.build_model(cfg).state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"format": "lakesift-byte-lm", "model": cfg.to_dict()}))
    return str(folder)


def spark_job(tmp: Path) -> dict | None:
    """The 990 real pages wrapped in WARC, ingested and extracted: the embedding classifier trained on
    reference text against them (fastText on the same split beside it), then score-neural over them."""
    if importlib.util.find_spec("pyspark") is None:          # the GPU machine has no Spark
        return None
    from bench.common import eval_pages, write_pages_as_warc
    from jobs.bronze import ingest_warc
    from jobs.classifiers import score_neural, train_neural
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark
    from jobs.silver import extract_documents

    home = str(tmp / "lakehouse")
    spark = get_spark(JobConfig(home=home), app_name="bench-neural")
    warc = tmp / "pages.warc.gz"
    write_pages_as_warc(warc, [(u, r) for u, _, r in eval_pages()])
    ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=(str(warc),)))
    extract_documents.run(spark, extract_documents.Config(home=home))
    text = SHARED / "text"
    positives = tuple(str(text / n) for n in ("wikitext-2_valid.txt", "tinyshakespeare_input.txt", "nltk_inaugural.zip",
                                              "nltk_state_union.zip", "ccnet"))
    trained = train_neural.run(spark, train_neural.Config(
        home=home, kind="embedding", name="bench_embedding", positives=positives, negatives=("silver.documents",),
        max_examples=800, min_words=20, device="cpu"))
    cfg = score_neural.Config(home=home, scorer="embedding", model="models:/bench_embedding@champion", device="cpu")
    score_neural.run(spark, cfg)                                  # warm: Python workers, model load
    started = time.perf_counter()
    out = score_neural.run(spark, cfg)
    seconds = time.perf_counter() - started
    return {"docs_per_s": out["rows_out_scores"] / seconds, "documents": out["rows_out_scores"], "seconds": seconds,
            "parallelism": spark.sparkContext.defaultParallelism, "heldout_examples": trained["examples"],
            "embedding_roc_auc": trained["roc_auc"], "fasttext_same_split_roc_auc": trained["fasttext_roc_auc"]}


def main() -> None:
    import torch

    from udfs import lm, neural

    texts = sample_texts(DOCS)
    device = lm.device_for("auto")
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    tmp = Path(tempfile.mkdtemp(prefix="lakesift-bench-neural-"))
    try:
        opts = neural.RunnerOptions(batch_size=BATCH, max_tokens=MAX_TOKENS, device=device)
        encoder = neural.default_encoder_path()
        tokenizer, model = neural.load_encoder(encoder, device)
        head_folder = saved_head(tmp / "head", model.config.hidden_size)
        head, _ = neural.load_head(head_folder)
        core = neural.scorer("embedding", head_folder, None, opts)
        core(texts[:BATCH])
        bare_minilm(texts[:BATCH], tokenizer, model, head, device)                       # warm both
        runs = 3 if device == "cuda" else 2
        t_bare = best_of(runs, lambda: bare_minilm(texts, tokenizer, model, head, device))
        t_core = best_of(runs, lambda: core(texts))
        agree = float(np.max(np.abs(core(texts[:256]) - bare_minilm(texts[:256], tokenizer, model, head, device))))
        lm_core = neural.scorer("reference", saved_lm(tmp / "lm"), None, opts)
        lm_core(texts[:BATCH])
        t_lm = best_of(runs, lambda: lm_core(texts))
        rows = [["MiniLM bare torch loop", device, len(texts), round(len(texts) / t_bare, 1), ""],
                ["MiniLM scoring core", device, len(texts), round(len(texts) / t_core, 1), f"{t_core / t_bare - 1:+.1%}"],
                ["reference LM (tiny) core", device, len(texts), round(len(texts) / t_lm, 1), ""]]
        spark = spark_job(tmp) if device == "cpu" else None
        if spark:
            rows.append(["MiniLM via Spark score-neural (real pages)", f"cpu local[{spark['parallelism']}]",
                         spark["documents"], round(spark["docs_per_s"], 1), ""])
            print(f"embedding classifier held-out ROC-AUC {spark['embedding_roc_auc']:.4f}; fastText on the same split "
                  f"{spark['fasttext_same_split_roc_auc']:.4f} ({spark['heldout_examples']} held-out documents)")
        report("neural" if device == "cpu" else "neural_gpu", ["scorer", "device", "documents", "docs/s", "overhead vs bare"], rows, {
            "device": name, "batch_size": BATCH, "max_tokens": MAX_TOKENS, "torch": torch.__version__,
            "core_overhead_vs_bare": t_core / t_bare - 1, "max_abs_score_difference_core_vs_bare": agree, "spark": spark,
            "texts": "WikiText-2 valid paragraphs, CCNet head docs, State of the Union (>= 20 words), seeded sample",
            "targets": {"core overhead <= 20%": t_core / t_bare - 1 <= 0.20,
                        **({"H100 >= 2000 docs/s MiniLM@256": len(texts) / t_core >= 2000} if device == "cuda" else {})},
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

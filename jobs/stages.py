"""The stages, in pipeline order: the one list the command line, `lakesift run`, the demo and the Databricks
bundle (tests/test_stages.py) are generated from or checked against. Each stage is declared once, in its
job module (`STAGE = Stage(...)`); a new stage is one module and one line here."""
from __future__ import annotations

from jobs.bronze import ingest_warc
from jobs.classifiers import classify_quality, score_neural, train_neural, train_quality
from jobs.gold import export_shards, select_corpus
from jobs.proxy import ablate, eval_proxy, train_proxy
from jobs.runtime.config import Stage
from jobs.silver import cluster_duplicates, detect_contamination, extract_documents

STAGES: tuple[Stage, ...] = tuple(m.STAGE for m in (
    ingest_warc, extract_documents, cluster_duplicates, detect_contamination, train_quality, classify_quality,
    train_neural, score_neural, select_corpus, export_shards, train_proxy, eval_proxy, ablate))
BY_NAME = {s.name: s for s in STAGES}

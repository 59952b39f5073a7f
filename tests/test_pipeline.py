"""`lakesift run` end to end on a small generated crawl (the fast tier's pipeline): counts reconcile stage to
stage, a second run skips every stage, and after a failure the next run resumes at the failed stage."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from jobs import pipeline
from jobs.demo.sample_crawl import SampleCrawlSpec, write_reference_text, write_sample_crawl
from tests.conftest import assert_keys_unique


def test_run_reconciles_skips_and_resumes(spark, tmp_path):
    home = str(tmp_path / "lakehouse")
    crawl, reference = tmp_path / "crawl.warc.gz", tmp_path / "reference.txt"
    write_sample_crawl(crawl, SampleCrawlSpec(pages=40, seed=3))
    reference.write_text("too short to learn from\n")            # no example reaches min_words: train-quality fails
    cfg = pipeline.Config(home=home, inputs=(str(crawl),), recipes=("raw", "heuristics_dedup", "dclm_like"),
                          reference_text=(str(reference),))
    labels = [s.label for s in pipeline.plan(cfg)]
    assert labels == ["ingest", "extract", "dedup", "train-quality", "classify", "select raw", "select heuristics_dedup",
                      "select dclm_like", "export raw", "export heuristics_dedup", "export dclm_like"]
    with pytest.raises(ValueError, match="positive documents"):
        pipeline.run(spark, cfg)

    write_reference_text(reference, paragraphs=200)                 # the input fixed: run again
    progress, checked = tmp_path / "progress.txt", []

    @contextlib.contextmanager
    def around(step):                    # the hook runs around every stage that runs
        yield
        checked.append(step.label)

    with progress.open("w") as out:
        results = pipeline.run(spark, cfg, progress=out, around=around)
    assert checked == labels[3:]
    assert_keys_unique(spark, home)      # no table holds a key (a doc_id, …) twice; each table has one writing stage
    by = {r.label: r for r in results}
    assert [r.label for r in results if r.skipped] == ["ingest", "extract", "dedup"]     # resumed at train-quality
    assert "[4/11] train-quality …" in progress.read_text()

    # counts reconcile from the crawl to the exports
    ingest, extract = by["ingest"].report, by["extract"].report
    assert extract.rows_in == 40 and ingest.rows_out == 40 + 12            # 40 HTML pages, 12 non-HTML responses
    assert by["select raw"].summary["documents_in"] == extract.rows_out == 40
    for recipe in ("raw", "heuristics_dedup", "dclm_like"):
        kept = by[f"select {recipe}"].summary["documents_out"]
        manifest = json.loads(Path(by[f"export {recipe}"].summary["output"], "manifest.json").read_text())
        assert manifest["documents"] == kept == sum(s["documents"] for s in manifest["shards"])
    assert 0 < by["select dclm_like"].summary["documents_out"] < by["select heuristics_dedup"].summary["documents_out"] < 40

    again = pipeline.run(spark, cfg, progress=progress.open("w"))
    assert all(r.skipped for r in again) and [r.report for r in again] == [r.report for r in results]
    forced = pipeline.run(spark, cfg.replace(force=True), steps=pipeline.plan(cfg)[:1], progress=progress.open("w"))
    assert not forced[0].skipped and forced[0].report.note.startswith("0 file(s) read, 1 already ingested")

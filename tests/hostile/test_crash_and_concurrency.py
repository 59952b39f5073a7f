"""Crash and concurrency, through the `lakesift` command in fresh processes: `extract` killed with SIGKILL
midway and rerun gives exactly the tables of an uninterrupted run; `ingest` of one crawl and `extract` of
another run at the same time without corrupting either table."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.demo.sample_crawl import SampleCrawlSpec, write_sample_crawl
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _parquet_files(table_dir: Path) -> list[Path]:
    return [p for p in table_dir.rglob("*.parquet")] if table_dir.exists() else []


def _commits(table_dir: Path) -> int:
    log = table_dir / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


def _ingest_and_extract(spark, home: str, warc: Path, extract: bool = True) -> None:
    from jobs.bronze import ingest_warc
    from jobs.silver import compute_heuristics, extract_documents

    ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=(str(warc),)))
    if extract:
        extract_documents.run(spark, extract_documents.Config(home=home))
        compute_heuristics.run(spark, compute_heuristics.Config(home=home))


def _silver_checksums(spark, home: str) -> dict:
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    register_lakehouse(spark, JobConfig(home=home))
    return {t: spark.sql(f"SELECT count(*) AS n, sum(CAST(xxhash64(*) AS DECIMAL(38,0))) AS h FROM {t}").first()
            for t in ("silver.documents", "silver.signals_heuristic")}


def test_extract_killed_midway_then_rerun_equals_uninterrupted(spark, tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    write_sample_crawl(warc, SampleCrawlSpec(pages=2000, seed=11, crawl="KILL-TEST"))
    interrupted, reference = str(tmp_path / "a"), str(tmp_path / "b")
    _ingest_and_extract(spark, reference, warc)
    _ingest_and_extract(spark, interrupted, warc, extract=False)

    # `lakesift extract` in its own process; once it is writing silver.documents (data files, no commit
    # yet) the whole process group, JVM included, gets SIGKILL.
    docs_dir = Path(interrupted) / "silver" / "documents"
    env = {**os.environ, "LAKESIFT_SPARK_MASTER": "local[2]"}
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "extract", "--home", interrupted], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    caught_midway = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if _parquet_files(docs_dir) and _commits(docs_dir) <= 1:     # version 0 is the empty table's creation
            caught_midway = True
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert caught_midway, "extract finished or failed before it could be interrupted"
    assert _commits(docs_dir) <= 1          # nothing of the killed write was committed
    left = set(_parquet_files(docs_dir))    # its data files, which no version names
    assert left and list((docs_dir / "_lakesift_writes").glob("*.json"))

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{interrupted}/mlflow.db")
    (exp,) = [e for e in client.search_experiments() if e.name == "lakesift"]
    killed = client.search_runs([exp.experiment_id], "tags.`lakesift.job` = 'extract_documents'")
    assert [r.info.status for r in killed] == ["RUNNING"]           # its process died with the run open

    _ingest_and_extract(spark, interrupted, warc)          # the rerun (ingest skips the file: already there)
    got, want = _silver_checksums(spark, interrupted), _silver_checksums(spark, reference)
    assert got == want and want["silver.documents"].n == 2000
    # the rerun's write of the table removed what the killed one left: every data file is a version's
    from jobs.runtime.datafiles import referenced_files

    assert not any(p.exists() for p in left) and not list((docs_dir / "_lakesift_writes").glob("*.json"))
    assert {str(p.relative_to(docs_dir)) for p in _parquet_files(docs_dir)} <= referenced_files(str(docs_dir))
    before = client.get_run(killed[0].info.run_id)         # the next job closed the abandoned run
    assert before.info.status == "KILLED" and before.data.tags["lakesift.error"].startswith("abandoned: process")
    statuses = {r.info.status for r in client.search_runs([exp.experiment_id], "")}
    assert statuses == {"FINISHED", "KILLED"}


def test_ingest_and_extract_of_another_crawl_at_the_same_time(spark, tmp_path):
    home = str(tmp_path / "lh")
    a, b = tmp_path / "a.warc.gz", tmp_path / "b.warc.gz"
    write_sample_crawl(a, SampleCrawlSpec(pages=400, seed=1, crawl="CRAWL-A"))
    write_sample_crawl(b, SampleCrawlSpec(pages=400, seed=2, crawl="CRAWL-B"))
    _ingest_and_extract(spark, home, b, extract=False)

    env = {**os.environ, "LAKESIFT_SPARK_MASTER": "local[1]"}
    base = [sys.executable, "-m", "jobs.cli"]
    procs = [
        subprocess.Popen(base + ["ingest", "--input", str(a), "--home", home], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen(base + ["extract", "--crawl", "CRAWL-B", "--home", home], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]

    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse
    from jobs.silver import compute_heuristics, extract_documents

    register_lakehouse(spark, JobConfig(home=home))
    counts = {r.crawl: r for r in spark.sql(
        "SELECT crawl, count(*) AS responses, count_if(is_html) AS html FROM bronze.warc_records GROUP BY 1").collect()}
    assert counts["CRAWL-A"].html == 400 and counts["CRAWL-B"].html == 400
    docs = spark.sql("SELECT count(*) AS n, count(DISTINCT doc_id) AS ids FROM silver.documents WHERE crawl = 'CRAWL-B'").first()
    assert (docs.n, docs.ids) == (400, 400)
    extract_documents.run(spark, extract_documents.Config(home=home, crawls=("CRAWL-A",)))
    compute_heuristics.run(spark, compute_heuristics.Config(home=home))
    assert spark.table("silver.documents").count() == 800
    assert spark.table("silver.signals_heuristic").count() == 800

"""Shared fixtures: one local SparkSession for the run, a fresh lakehouse per test, the real data."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# `make test` runs two pytest workers on a 2-core machine: torch's and BLAS's default of one thread per core
# then means two threads per core, and OpenMP's spin-waiting made the torch tests 8-15x slower than alone
# (test_proxy's memorisation test: 9.9 s alone, 82 s beside the other worker). One thread each, children too.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# The longest test files, longest first, with their seconds in a 17:47 run of `make test` on 2 cores
# (2026-12-08, --durations): `make test`'s two workers take whole files (--dist loadfile) in collection
# order, so these start first and the many short files fill in at the end. In plain collection order
# test_spark_submit.py (156 s) started last and ran alone; with every file that has a slow test moved
# ahead of the rest, the suite took 21:49.
LONGEST_FIRST = ("test_e2e_cli.py",                       # 470 s
                 "hostile/test_crash_and_concurrency.py",  # 167
                 "test_spark_submit.py",                   # 156
                 "test_bronze_silver_jobs.py",             # 150
                 "hostile/test_bombs.py",                  # 146
                 "test_datafiles.py",                      # 140
                 "test_dedup_jobs.py",                     # 136
                 "test_heuristics_conformance.py",         # 100
                 "test_neural.py",                         # 80
                 "hostile/test_ingest.py",                 # 75
                 "test_gold_jobs.py",                      # 70
                 "test_pipeline.py")                       # 65


def pytest_collection_modifyitems(config, items):
    """LONGEST_FIRST's files ahead of the others, in its order; every file's tests in their own order."""
    missing = [name for name in LONGEST_FIRST if not (ROOT / "tests" / name).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py LONGEST_FIRST names files that do not exist: {missing}")
    rank = {(ROOT / "tests" / name).resolve(): i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.resolve(), len(rank)))      # a stable sort


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real-data tests need ../shared/data (looked in {SHARED}); it is not part of a user's clone")
    return SHARED


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The session our own builder makes (jobs/runtime/spark.py), sized for tests."""
    os.environ["LAKESIFT_SPARK_MASTER"] = "local[2]"
    from jobs.runtime.config import JobConfig
    from jobs.runtime.spark import get_spark

    session = get_spark(JobConfig(home=str(tmp_path_factory.mktemp("lakehouse-boot"))), app_name="lakesift-tests")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.fixture
def home(tmp_path) -> str:
    path = tmp_path / "lakehouse"
    path.mkdir()
    return str(path)


def gz_record(record_id: str, http: bytes, uri: str = "http://example.org/page",
              date: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc), version: str = "WARC/1.1",
              warc_type: str = "response", content_type: str = "application/http; msgtype=response") -> bytes:
    """One gzip member holding one WARC record."""
    from jobs.demo.sample_crawl import warc_record

    raw = warc_record(warc_type, record_id, date, http, uri, content_type)
    return gzip.compress(raw.replace(b"WARC/1.1", version.encode(), 1), mtime=0)


def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, home: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`lakesift ARGS --home HOME` in a fresh process (what a user types)."""
    full_env = {**os.environ, "LAKESIFT_SPARK_MASTER": "local[2]", **(env or {})}
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args, "--home", home], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_keys_unique(spark, home: str) -> None:
    """No table of the lakehouse at `home` holds two rows with the same key (TableContract.key): the
    doc_id of a document, the (doc_id, recipe) of a corpus row, …"""
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import lakehouse_tables, table_location
    from schemas import bronze, gold, silver

    from pyspark.sql import functions as F

    cfg = JobConfig(home=home)
    contracts = {(c.layer, c.name): c for c in (*bronze.TABLES, *silver.TABLES, *gold.TABLES) if c.key}
    checks = [(spark.read.format("delta").load(table_location(cfg, layer, name)).groupBy(*contracts[layer, name].key)
               .count().where("count > 1").select(F.lit(f"{layer}.{name} ({', '.join(contracts[layer, name].key)})")
                                                   .alias("table")))
              for layer, name in lakehouse_tables(cfg) if (layer, name) in contracts]
    if checks:                                              # one Spark job for every table
        union = checks[0]
        for more in checks[1:]:
            union = union.unionByName(more)
        shared = sorted({r.table for r in union.collect()})
        assert not shared, f"tables holding rows that share their key: {shared}"

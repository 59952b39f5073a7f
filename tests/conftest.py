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


def pytest_collection_modifyitems(config, items):
    """Files that hold slow tests first, every file's tests in their own order: `make test`'s two workers
    take whole files (--dist loadfile) in this order, so the long files start early and the short ones fill
    in at the end, instead of one long file running alone while the other worker idles."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)      # a stable sort


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

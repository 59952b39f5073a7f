"""spark-submit on a real Spark standalone cluster on 127.0.0.1: one master and two workers started with
pyspark's own spark-daemon.sh, `lakesift submit -- extract` run there with the packed executor environment
shipped with --archives, the cluster stopped by its process ids. extract runs every kind of Python worker
the silver layer has (resiliparse, language ID, heuristics); the archive is checked for every executor
package. (The whole demo, submitted the same way, took ~170 s here; this takes ~90 s.)"""
from __future__ import annotations

import json
import os
import sys
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, run_cli

pytestmark = pytest.mark.slow


def executor_archive() -> Path:
    """dist/lakesift-env.tar.gz, packed again when any source file is newer."""
    from jobs import submit

    archive = submit.DEFAULT_ARCHIVE
    sources = [p for d in ("jobs", "udfs", "schemas") for p in (ROOT / d).rglob("*.py")] + [ROOT / "pyproject.toml"]
    if not archive.exists() or archive.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        result = subprocess.run([sys.executable, "-m", "jobs.cli", "pack-env"], cwd=ROOT, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    return archive


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def cluster(tmp_path):
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    pids = tmp_path / "pids"
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_PID_DIR": str(pids), "SPARK_LOG_DIR": str(tmp_path / "logs"),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_IDENT_STRING": "lakesift-test"}
    daemon = str(spark_home / "sbin" / "spark-daemon.sh")
    port, ui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    try:
        subprocess.run([daemon, "start", "org.apache.spark.deploy.master.Master", "1", "--host", "127.0.0.1",
                        "--port", str(port), "--webui-port", str(ui)], env=env, check=True, capture_output=True)
        for i in (1, 2):
            subprocess.run([daemon, "start", "org.apache.spark.deploy.worker.Worker", str(i), "--host", "127.0.0.1",
                            "--cores", "1", "--memory", "3g", "--webui-port", str(free_port()),
                            "--work-dir", str(tmp_path / f"work{i}"), url], env=env, check=True, capture_output=True)
        deadline = time.time() + 90
        while True:
            try:
                if sum(w["state"] == "ALIVE" for w in master_state(ui)["workers"]) == 2:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "the workers did not register: " + "\n".join(
                p.read_text()[-2000:] for p in (tmp_path / "logs").glob("*.out"))
            time.sleep(1)
        yield url, ui
    finally:
        started = sorted(pids.glob("*.pid")) if pids.exists() else []
        for pid_file in started:
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 30
        for pid_file in started:
            pid = int(pid_file.read_text().strip())
            while time.time() < deadline and _alive(pid):
                time.sleep(0.5)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_extract_submitted_to_a_standalone_cluster(cluster, spark, tmp_path):
    import tarfile

    from jobs import submit
    from jobs.bronze import ingest_warc
    from jobs.demo.sample_crawl import SampleCrawlSpec, write_sample_crawl
    from jobs.runtime.config import JobConfig
    from jobs.runtime.tables import register_lakehouse

    url, ui = cluster
    archive = executor_archive()
    with tarfile.open(archive) as tar:          # every package executors import, at the driver's version
        packed = {Path(n).parent.name.lower() for n in tar.getnames() if n.endswith(".dist-info/METADATA")}
    for pin in submit.pinned(submit.EXECUTOR_PACKAGES + submit.NO_DEPS):
        name, ver = pin.split("==")
        assert f"{name.replace('-', '_').lower()}-{ver}.dist-info" in packed, pin
    home = str(tmp_path / "lakehouse")
    warc = tmp_path / "crawl.warc.gz"
    write_sample_crawl(warc, SampleCrawlSpec(pages=60, seed=5, crawl="CLUSTER-TEST"))
    ingest_warc.run(spark, ingest_warc.Config(home=home, inputs=(str(warc),)))        # here, in local[2]
    result = run_cli("submit", "--master", url, "--env-archive", str(archive), "--conf", "spark.executor.memory=2g",
                     "--", "extract", home=home, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    (app,) = master_state(ui)["completedapps"]
    assert app["state"] == "FINISHED" and app["name"]                     # it ran on this cluster, not local[*]
    register_lakehouse(spark, JobConfig(home=home))
    row = spark.sql("SELECT (SELECT count(*) FROM silver.documents WHERE char_count > 0 AND language IS NOT NULL) AS docs, "
                    "(SELECT count(*) FROM silver.signals_heuristic) AS signals").first()
    assert (row.docs, row.signals) == (60, 60)

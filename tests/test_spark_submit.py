"""spark-submit on a real Spark standalone cluster on 127.0.0.1: one master and two workers started with
pyspark's own spark-daemon.sh, the pipeline submitted with `lakesift submit` (packed executor environment
shipped with --archives), the tables checked from a new process, the cluster stopped by its process ids."""
from __future__ import annotations

import json
import os
import sys
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def test_pipeline_submitted_to_a_standalone_cluster(cluster, tmp_path):
    url, ui = cluster
    archive = executor_archive()
    home = str(tmp_path / "lakehouse")
    result = run_cli("submit", "--master", url, "--env-archive", str(archive), "--conf", "spark.executor.memory=2g",
                     "--", "demo", "--pages", "60", home=home, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "export" in result.stdout
    apps = master_state(ui)["completedapps"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"            # it ran on this cluster, not local[*]
    counts = run_cli("sql", "SELECT (SELECT count(*) FROM bronze.warc_records) AS bronze, "
                     "(SELECT count(*) FROM silver.documents) AS docs, (SELECT count(*) FROM silver.duplicates) AS dups, "
                     "(SELECT count(DISTINCT recipe) FROM gold.corpus) AS recipes", "--format", "json", home=home)
    assert counts.returncode == 0, counts.stderr[-2000:]
    row = json.loads(counts.stdout.strip().splitlines()[-1])
    assert row["bronze"] >= 60 and row["docs"] == 60 and row["dups"] == 60 and row["recipes"] == 3

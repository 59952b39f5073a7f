"""Data files no table version names (issue 22): a killed write's files go at the next write of the table
(tests/hostile/test_crash_and_concurrency.py) or with `lakesift vacuum`, which never touches a version's files or
those of a write still open."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.runtime import datafiles, tables
from jobs.runtime.config import JobConfig
from jobs.runtime.tracking import process_id
from schemas import bronze

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]


def _write_marker(table: Path, write_id: str, process: str) -> Path:
    folder = table / datafiles.WRITES_FOLDER
    folder.mkdir(exist_ok=True)
    (folder / f"{write_id}.json").write_text(f'{{"process": "{process}", "started": {time.time()}}}')
    return folder / f"{write_id}.json"


def test_vacuum_removes_only_what_no_version_names(spark, home, capsys):
    cfg = JobConfig(home=home)
    rows = [(f"/crawl/{i}.warc.gz", i, None, "CorruptBytes", "bad bytes") for i in range(3)]
    tables.append(spark.createDataFrame(rows, bronze.INGEST_ERRORS.schema), cfg, bronze.INGEST_ERRORS)
    table = Path(tables.table_location(cfg, "bronze", "ingest_errors"))
    versioned = sorted(table.rglob("*.parquet"))
    payload = versioned[0].read_bytes()

    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True, check=True).stdout)
    dead_marker = _write_marker(table, "a" * 16, f"{socket.gethostname()}:{dead_pid}:1")
    live_marker = _write_marker(table, "b" * 16, process_id(os.getpid()))
    dead_file, live_file = table / f"part-{'a' * 16}-x.c000.snappy.parquet", table / f"part-{'b' * 16}-y.c000.snappy.parquet"
    old_spark_file, new_spark_file = table / "part-00000-old.c000.snappy.parquet", table / "part-00001-new.c000.snappy.parquet"
    for f in (dead_file, live_file, old_spark_file, new_spark_file):
        f.write_bytes(payload)
    two_days_ago = time.time() - 48 * 3600
    os.utime(old_spark_file, (two_days_ago, two_days_ago))

    assert main(["vacuum", "--home", home, "--dry-run"]) == 0
    out = capsys.readouterr()
    assert f"would remove {dead_file}" in out.out and f"would remove {old_spark_file}" in out.out
    assert dead_file.exists() and "would remove 2 unreferenced data file(s)" in out.err

    assert main(["vacuum", "--home", home]) == 0
    assert not dead_file.exists() and not old_spark_file.exists() and not dead_marker.exists()
    assert live_file.exists() and new_spark_file.exists() and live_marker.exists()
    assert all(p.exists() for p in versioned)
    assert spark.read.format("delta").load(str(table)).count() == 3


def test_a_failed_write_deletes_its_files(spark, home):
    """A kernel that raises in one task after another task wrote its file: the file is deleted, nothing
    is committed."""
    cfg = JobConfig(home=home)
    table = Path(tables.table_location(cfg, "bronze", "warc_records"))

    def failing(batches, side):
        from jobs.runtime.arrow import arrow_schema, batches as to_batches

        rows = [{"record_id": "r1", "crawl": "C", "source_file": "f", "source_offset": 0, "format": "WARC/1.1",
                 "is_html": True, "payload": b"x", "payload_length": 1, "payload_truncated": False,
                 "payload_digest": "sha1:x"}]
        for batch in batches:
            if "g" in batch.column("path").to_pylist():         # the other task writes and closes its file
                time.sleep(3)
                raise RuntimeError("kernel fails after writing")
            yield from to_batches(rows, arrow_schema(bronze.WARC_RECORDS.schema))

    with pytest.raises(Exception, match="kernel fails after writing"):
        tables.rewrite(spark, cfg, bronze.WARC_RECORDS, failing, "source_file", ["f", "g"], files=["f", "g"])
    assert not list(table.rglob("*.parquet")) and not list((table / datafiles.WRITES_FOLDER).glob("*.json"))

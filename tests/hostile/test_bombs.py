"""Decompression bombs through `lakesift ingest` and `lakesift extract` with the Python workers held to 2 GiB
of address space (Spark's spark.executor.pyspark.memory, an RLIMIT_AS): a 3 MB body that inflates to
3 GiB (Content-Encoding: gzip) and a WARC record whose gzip member inflates to 3 GiB. Both finish, keep the
capped bytes and say so; uncapped, either one is a MemoryError in the worker."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from isal import isal_zlib

from jobs.demo.sample_crawl import warc_record
from tests.conftest import gz_record, http_response, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

GIB = 1 << 30
BLOCK = b"<p>" + b"a" * (1 << 20)        # one letter, 1 MiB at a time: ISA-L level 1 packs 3 GiB into 3 MB
WORKER_LIMIT = {"PYSPARK_SUBMIT_ARGS": "--conf spark.executor.pyspark.memory=2g pyspark-shell"}


def _gzip_stream(head: bytes, n_blocks: int, tail: bytes) -> bytes:
    z = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    return z.compress(head) + b"".join(z.compress(BLOCK) for _ in range(n_blocks)) + z.compress(tail) + z.flush()


def test_bombs_finish_under_a_worker_memory_limit(tmp_path):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    n = 3 * GIB // len(BLOCK)
    # 1. a page whose stored body is 3 MB of gzip that inflates to 3 GiB
    body = _gzip_stream(b"<html><body>", n, b"</body></html>")
    assert len(body) < 5 << 20
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\n\r\n"
    (crawl / "content-encoding-bomb.warc.gz").write_bytes(gz_record("urn:uuid:bomb", head + body))
    # 2. a WARC record whose gzip member holds a 3 GiB page
    http_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    record_head = warc_record("response", "urn:uuid:member-bomb", datetime(2024, 1, 1, tzinfo=timezone.utc),
                              http_head, "http://bomb.example/")
    length = len(http_head) + n * len(BLOCK)
    record_head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % length, record_head[: -len(b"\r\n\r\n")])
    (crawl / "member-bomb.warc.gz").write_bytes(_gzip_stream(record_head, n, b"\r\n\r\n"))
    (crawl / "fine.warc.gz").write_bytes(gz_record("urn:uuid:fine", http_response(b"<html><p>an ordinary page</p></html>")))

    home = str(tmp_path / "lakehouse")
    for args in (("ingest", "--input", str(crawl)), ("extract",)):
        done = run_cli(*args, home=home, env=WORKER_LIMIT, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Setting mem limits to 2147483648" in done.stderr     # the workers ran under the limit

    rows = run_cli("sql", "SELECT r.record_id, r.payload_length, r.payload_truncated, length(r.payload) AS kept, "
                          "d.body_truncated, d.char_count FROM bronze.warc_records r JOIN silver.documents d "
                          "ON d.doc_id = r.record_id ORDER BY 1", "--format", "json", home=home)
    assert rows.returncode == 0, rows.stderr[-2000:]
    import json

    got = {r["record_id"]: r for r in (json.loads(line) for line in rows.stdout.splitlines() if line.strip())}
    assert set(got) == {"urn:uuid:bomb", "urn:uuid:member-bomb", "urn:uuid:fine"}
    bomb, member = got["urn:uuid:bomb"], got["urn:uuid:member-bomb"]
    assert not bomb["payload_truncated"] and bomb["body_truncated"] and bomb["char_count"] > 0     # inflated up to 5 MiB
    assert member["payload_truncated"] and member["payload_length"] == n * len(BLOCK) and member["kept"] == 5 << 20
    assert not got["urn:uuid:fine"]["body_truncated"]

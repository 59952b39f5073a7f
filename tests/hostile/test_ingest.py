"""Bad crawl files through ingest and extract on Spark (issue 22): every response record becomes a document,
a non-HTML row or an error row, per file, with the records around a bad one kept."""
from __future__ import annotations

import gzip
import re
from datetime import datetime, timezone

import pytest

from jobs.demo.sample_crawl import warc_record
from tests.conftest import gz_record, http_response
from tests.test_bronze_silver_jobs import extract, ingest

pytestmark = pytest.mark.filterwarnings("ignore")

OK = http_response(b"<html><body><p>This ordinary page has a sentence that is long enough to keep.</p></body></html>")
LATIN = "<html><body><p>Grüße aus München, dieser Satz ist lang genug für den Text.</p></body></html>".encode("latin-1")


def _six(prefix: str, length: bytes | None, gzipped: bool) -> bytes:
    """Six responses; the second one's Content-Length replaced by `length` (None: removed)."""
    out = []
    for i in range(6):
        rec = warc_record("response", f"urn:uuid:{prefix}{i}", datetime(2024, 1, 1, tzinfo=timezone.utc), OK,
                          f"http://{prefix}.example/{i}")
        if i == 1:
            rec = re.sub(rb"Content-Length: \d+\r\n", b"" if length is None else b"Content-Length: " + length + b"\r\n", rec)
        out.append(gzip.compress(rec, mtime=0) if gzipped else rec)
    return b"".join(out)


def no_duplicate_ids(spark) -> None:
    for table, key in (("bronze.warc_records", "record_id"), ("silver.documents", "doc_id")):
        dup = spark.sql(f"SELECT {key}, count(*) n FROM {table} GROUP BY {key} HAVING n > 1").collect()
        assert not dup, f"{table} holds duplicate {key}s: {dup[:3]}"


def test_every_bad_input_becomes_a_document_or_an_error_row(spark, home, tmp_path):
    d = tmp_path / "crawl"
    d.mkdir()
    cases = {   # file -> bytes, (documents, non-HTML rows, error rows) it must give
        "truncated.warc.gz": (gz_record("urn:uuid:t1", OK) + gz_record("urn:uuid:t2", OK)[:40], (1, 0, 1)),
        "garbage.warc.gz": (gz_record("urn:uuid:g1", OK) + b"\x00GARBAGE\xff" * 5 + gz_record("urn:uuid:g2", OK), (2, 0, 1)),
        "empty.warc.gz": (gz_record("urn:uuid:e1", http_response(b"")), (1, 0, 0)),
        "wrong-charset.warc.gz": (gz_record("urn:uuid:c1", http_response(LATIN, "text/html; charset=utf-8")), (1, 0, 0)),
        "no-charset.warc.gz": (gz_record("urn:uuid:c2", http_response(LATIN, "text/html")), (1, 0, 0)),
        "huge.warc.gz": (gz_record("urn:uuid:h1", http_response(
            b"<html><body>" + b"<p>A huge page repeats this sentence again and again.</p>" * 900_000 + b"</body></html>")),
            (1, 0, 0)),
        "binary.warc.gz": (gz_record("urn:uuid:b1", http_response(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 8)),
                           (1, 0, 0)),
        "image.warc.gz": (gz_record("urn:uuid:i1", http_response(b"\x89PNG\r\n", "image/png")), (0, 1, 0)),
        "bad-http.warc.gz": (gz_record("urn:uuid:m1", b"HTTP/1.1 OK-ish\r\nbroken header line\r\n\r\n<p>x</p>"), (0, 0, 1)),
        # a wrong Content-Length costs its own record only (it used to swallow the four after it)
        "length-too-large.warc.gz": (_six("L", b"99999", True), (5, 0, 1)),
        "length-too-small.warc": (_six("S", b"40", False), (5, 0, 1)),
        "length-missing.warc.gz": (_six("M", None, True), (5, 0, 1)),
        "length-negative.warc": (_six("N", b"-5", False), (5, 0, 1)),
    }
    for name, (data, _) in cases.items():
        (d / name).write_bytes(data)
    summary = ingest(spark, home, d, tmp_path / "does-not-exist.warc.gz", max_payload_bytes=10 * 1024 * 1024)
    extract(spark, home)

    counts = spark.sql("""
        SELECT f, sum(docs) docs, sum(non_html) non_html, sum(errors) errors FROM (
          SELECT source_file f, 1 docs, 0 non_html, 0 errors FROM silver.documents
          UNION ALL SELECT source_file, 0, 1, 0 FROM bronze.warc_records WHERE NOT is_html
          UNION ALL SELECT source_file, 0, 0, 1 FROM bronze.ingest_errors) GROUP BY f""").collect()
    got = {r.f.rsplit("/", 1)[-1]: (r.docs, r.non_html, r.errors) for r in counts}
    assert got == {**{name: want for name, (_, want) in cases.items() if want != (0, 0, 0)},
                   "does-not-exist.warc.gz": (0, 0, 1)}
    assert {f: (c["html"], c["non_html"], c["errors"]) for f, c in
            ((f.rsplit("/", 1)[-1], c) for f, c in summary["per_file"].items())} == got   # what ingest reported
    no_duplicate_ids(spark)

    errors = {(r.source_file.rsplit("/", 1)[-1], r.error_class, r.record_id)
              for r in spark.table("bronze.ingest_errors").collect()}
    assert errors == {("truncated.warc.gz", "TruncatedRecord", None), ("garbage.warc.gz", "CorruptBytes", None),
                      ("bad-http.warc.gz", "MalformedHttp", "urn:uuid:m1"),
                      ("length-too-large.warc.gz", "ContentLengthMismatch", "urn:uuid:L1"),
                      ("length-too-small.warc", "ContentLengthMismatch", "urn:uuid:S1"),
                      ("length-missing.warc.gz", "MissingContentLength", "urn:uuid:M1"),
                      ("length-negative.warc", "BadContentLength", "urn:uuid:N1"),
                      ("does-not-exist.warc.gz", "FileNotFound", None)}
    docs = {r.doc_id: r for r in spark.table("silver.documents").collect()}
    assert docs["urn:uuid:e1"].extract_error == "empty payload"
    assert docs["urn:uuid:b1"].extract_error == "binary payload"
    for wrong in ("urn:uuid:c1", "urn:uuid:c2"):
        assert "Grüße aus München" in docs[wrong].text and docs[wrong].language == "de"
    huge = spark.sql("SELECT payload_truncated, payload_length, length(payload) AS kept FROM bronze.warc_records "
                     "WHERE record_id = 'urn:uuid:h1'").first()
    assert huge.payload_truncated and huge.payload_length > 50_000_000 and huge.kept == 10 * 1024 * 1024
    assert docs["urn:uuid:h1"].word_count > 100_000 and docs["urn:uuid:h1"].extract_error is None

    # the missing file appears: the next ingest reads it alone and its FileNotFound row goes
    (tmp_path / "does-not-exist.warc.gz").write_bytes(gz_record("urn:uuid:late", OK))
    again = ingest(spark, home, d, tmp_path / "does-not-exist.warc.gz")
    assert again["files_read"] == 1 and again["files_already_ingested"] == len(cases) and again["responses"] == 1
    errors = {(r.source_file.rsplit("/", 1)[-1], r.error_class) for r in spark.table("bronze.ingest_errors").collect()}
    assert ("does-not-exist.warc.gz", "FileNotFound") not in errors and len(errors) == 7
    assert spark.table("bronze.warc_records").where("record_id = 'urn:uuid:late'").count() == 1

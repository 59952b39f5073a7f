"""Bad crawl files through ingest and extract on Spark (issue 22): every response record becomes a document,
a non-HTML row or an error row, per file, with the records around a bad one kept."""
from __future__ import annotations

import gzip
import re
from datetime import datetime, timezone

import pytest

from jobs.demo.sample_crawl import warc_record
from tests.conftest import assert_keys_unique, gz_record, http_response
from tests.test_bronze_silver_jobs import extract, ingest

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]      # make test-fast stays under 5 minutes

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


def test_every_bad_input_becomes_a_document_or_an_error_row(spark, home, tmp_path):
    d = tmp_path / "crawl"
    d.mkdir()
    cases = {   # file -> bytes, (documents, non-HTML rows, error rows) it must give
        "truncated.warc.gz": (gz_record("urn:uuid:t1", OK) + gz_record("urn:uuid:t2", OK)[:40], (1, 0, 1)),
        "garbage.warc.gz": (gz_record("urn:uuid:g1", OK) + b"\x00GARBAGE\xff" * 5 + gz_record("urn:uuid:g2", OK), (2, 0, 1)),
        "empty.warc.gz": (gz_record("urn:uuid:e1", http_response(b"")), (1, 0, 0)),
        "wrong-charset.warc.gz": (gz_record("urn:uuid:c1", http_response(LATIN, "text/html; charset=utf-8")), (1, 0, 0)),
        "no-charset.warc.gz": (gz_record("urn:uuid:c2", http_response(LATIN, "text/html")), (1, 0, 0)),
        # declared UTF-16, bytes UTF-8 (no BOM, no NUL pattern): the declaration is passed over
        "utf16-lie.warc.gz": (gz_record("urn:uuid:c3", http_response(LATIN.decode("latin-1").encode("utf-8"),
                                                                     "text/html; charset=utf-16")), (1, 0, 0)),
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
    assert_keys_unique(spark, home)

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
    for wrong in ("urn:uuid:c1", "urn:uuid:c2", "urn:uuid:c3"):
        assert "Grüße aus München" in docs[wrong].text and docs[wrong].language == "de"
    assert docs["urn:uuid:c3"].charset == "utf-8"    # bronze.declared_charset still says utf-16: the disagreement
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


def test_copies_are_known_by_content_and_no_table_holds_an_id_twice(spark, home, tmp_path):
    """The same crawl file under a second path, a symlink to it, its records re-compressed into another
    file, and a reused record id with another payload: read once, reported, no duplicate ids anywhere."""
    crawl, elsewhere = tmp_path / "crawl", tmp_path / "elsewhere"
    crawl.mkdir()
    elsewhere.mkdir()
    original = b"".join(gz_record(f"urn:uuid:o{i}", OK, uri=f"http://o.example/{i}") for i in range(4))
    (crawl / "a.warc.gz").write_bytes(original)
    (elsewhere / "copy-of-a.warc.gz").write_bytes(original)                       # same bytes, other path
    (crawl / "link-to-a.warc.gz").symlink_to(crawl / "a.warc.gz")                 # resolves to a.warc.gz
    (crawl / "b.warc").write_bytes(gzip.decompress(original))                     # same records, other bytes
    reused = gz_record("urn:uuid:o0", http_response(b"<html><p>another page with the same id</p></html>"))
    (crawl / "c.warc.gz").write_bytes(reused + gz_record("urn:uuid:c1", OK))

    first = ingest(spark, home, crawl, elsewhere)
    assert first["files"] == 4 and first["copies"] == {str(elsewhere / "copy-of-a.warc.gz"): str(crawl / "a.warc.gz")}
    per_file = {f.rsplit("/", 1)[-1]: (c["responses"], c["duplicate_records"], c["errors"]) for f, c in first["per_file"].items()}
    assert per_file == {"a.warc.gz": (4, 0, 0), "b.warc": (0, 4, 0), "c.warc.gz": (1, 0, 1)}
    assert_keys_unique(spark, home)
    (err,) = spark.table("bronze.ingest_errors").collect()
    assert (err.record_id, err.error_class) == ("urn:uuid:o0", "DuplicateRecordId") and "a.warc.gz" in err.message
    files = {r.source_file.rsplit("/", 1)[-1]: r for r in spark.table("bronze.ingest_files").collect()}
    assert files["copy-of-a.warc.gz"].duplicate_of == str(crawl / "a.warc.gz")
    assert files["a.warc.gz"].file_digest == files["copy-of-a.warc.gz"].file_digest != files["b.warc"].file_digest
    assert files["b.warc"].duplicate_records == 4 and files["a.warc.gz"].responses == 4

    extract(spark, home)
    assert_keys_unique(spark, home)
    assert spark.table("silver.documents").count() == 5

    again = ingest(spark, home, crawl, elsewhere)      # nothing new: not even hashed again
    assert again["files_already_ingested"] == 4 and again["files_read"] == 0 and not again["copies"]
    assert spark.table("bronze.warc_records").count() == 5

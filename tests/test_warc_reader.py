"""udfs/warc.py without Spark: real files, and every kind of bad input the reader must survive."""
from __future__ import annotations

import gzip
import hashlib
from collections import Counter

import pytest

from tests.conftest import gz_record, http_response
from udfs.warc import ReadOptions, is_html, parse_content_type, parse_http_head, read_archive

OK_HTML = http_response(b"<html><body><p>hello</p></body></html>")


def rows_of(path, **opts):
    """The reader's rows but the last, the file's digest (checked against the file's bytes here)."""
    *rows, digest = read_archive(str(path), ReadOptions(**opts))
    if digest["kind"] == "digest":
        data = open(path, "rb").read()
        assert (digest["size_bytes"], digest["file_digest"]) == (len(data), "sha256:" + hashlib.sha256(data).hexdigest())
        return rows
    return [*rows, digest]                       # a file that could not be opened has no digest


def kinds(rows):
    return Counter(r["kind"] for r in rows)


# ------------------------------------------------------------------------------------------- real files

# Response counts from the MANIFEST and from reading each file; the 38 dns: records of the 2008 crawl
# are response records but not HTTP.
# "other": warcinfo, request, metadata, resource records (read, not responses).
REAL = {
    "whirlwind.warc.gz": {"response": 1, "other": 3},
    "warcfile.warc.gz": {"response": 16, "other": 34},
    "sample-0000.warc.gz": {"response": 22, "other": 26},
    "sample-0001.warc.gz": {"response": 15, "other": 19},
    "aut-example.warc.gz": {"response": 261, "skipped": 38, "other": 523},
    "aut-example.arc.gz": {"response": 261, "skipped": 38, "other": 1},
    "aut-example.docs.warc.gz": {"response": 9, "other": 12},
    "clipped.warc.gz": {"error": 1},
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files_read_completely(shared_data, name):
    rows = rows_of(shared_data / "warc" / name)
    assert dict(kinds(rows)) == REAL[name]


def test_warc_017_and_arc_copies_of_one_crawl_agree(shared_data):
    warc = [r for r in rows_of(shared_data / "warc" / "aut-example.warc.gz") if r["kind"] == "response"]
    arc = [r for r in rows_of(shared_data / "warc" / "aut-example.arc.gz") if r["kind"] == "response"]
    assert {r["format"] for r in warc} == {"WARC/0.17"} and {r["format"] for r in arc} == {"ARC/1"}
    assert sum(r["is_html"] for r in warc) == sum(r["is_html"] for r in arc) == 140
    assert sorted(r["payload_digest"] for r in warc) == sorted(r["payload_digest"] for r in arc)


def test_crawl_id_comes_from_warcinfo(shared_data):
    rows = [r for r in rows_of(shared_data / "warc" / "whirlwind.warc.gz") if r["kind"] == "response"]
    assert rows[0]["crawl"] == "CC-MAIN-2024-22"
    assert rows[0]["target_uri"] == "https://an.wikipedia.org/wiki/Escopete"
    assert rows[0]["http_status"] == 200 and rows[0]["is_html"]


def test_crawl_option_overrides(shared_data):
    rows = [r for r in rows_of(shared_data / "warc" / "whirlwind.warc.gz", crawl="MY-CRAWL") if r["kind"] == "response"]
    assert rows[0]["crawl"] == "MY-CRAWL"


def test_clipped_file_is_a_truncated_record_error(shared_data):
    (row,) = rows_of(shared_data / "warc" / "clipped.warc.gz")
    assert row["kind"] == "error" and row["error_class"] == "TruncatedRecord"
    assert row["source_offset"] == 0 and row["record_id"] == "urn:uuid:f3dfa8fa-f031-4a38-90cc-1dcee3d07bb5"


# -------------------------------------------------------------------------------------------- bad input

def test_garbage_between_gzip_members(tmp_path):
    a, b, c = gz_record("urn:uuid:a", OK_HTML), gz_record("urn:uuid:b", OK_HTML), gz_record("urn:uuid:c", OK_HTML)
    path = tmp_path / "garbage.warc.gz"
    garbage = b"GARBAGE\x00\x01junk"
    path.write_bytes(a + garbage + b + c)
    rows = rows_of(path)
    assert [r.get("record_id") for r in rows if r["kind"] == "response"] == ["urn:uuid:a", "urn:uuid:b", "urn:uuid:c"]
    (err,) = [r for r in rows if r["kind"] == "error"]
    assert err["error_class"] == "CorruptBytes" and err["source_offset"] == len(a)
    assert f"resumed at offset {len(a) + len(garbage)}" in err["message"]


def test_garbage_between_uncompressed_records(tmp_path):
    recs = [gzip.decompress(gz_record(f"urn:uuid:{x}", OK_HTML)) for x in "abc"]
    path = tmp_path / "garbage.warc"
    path.write_bytes(recs[0] + b"GARBAGE\x00\x01" + recs[1] + recs[2])
    rows = rows_of(path)
    assert [r["record_id"] for r in rows if r["kind"] == "response"] == ["urn:uuid:a", "urn:uuid:b", "urn:uuid:c"]
    (err,) = [r for r in rows if r["kind"] == "error"]
    assert err["source_offset"] == len(recs[0])
    offsets = [r["source_offset"] for r in rows if r["kind"] == "response"]
    assert offsets == [0, len(recs[0]) + 9, 2 * len(recs[0]) + 9]


def test_corrupt_member_costs_only_itself(tmp_path):
    a, b, c = (gz_record(f"urn:uuid:{x}", OK_HTML * 20) for x in "abc")
    broken = b[:30] + bytes(x ^ 0x55 for x in b[30:60]) + b[60:]
    path = tmp_path / "corrupt.warc.gz"
    path.write_bytes(a + broken + c)
    rows = rows_of(path)
    assert [r.get("record_id") for r in rows if r["kind"] == "response"] == ["urn:uuid:a", "urn:uuid:c"]
    (err,) = [r for r in rows if r["kind"] == "error"]
    assert err["source_offset"] == len(a)


def test_truncated_gzip_at_end(tmp_path):
    a, b = gz_record("urn:uuid:a", OK_HTML), gz_record("urn:uuid:b", http_response(b"<p>x</p>" * 2000))
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(a + b[: len(b) // 2])
    rows = rows_of(path)
    assert [(r["kind"], r.get("error_class")) for r in rows] == [("response", None), ("error", "TruncatedRecord")]
    assert rows[1]["source_offset"] == len(a)


def test_file_cut_inside_a_record_header(tmp_path):
    a, b = gz_record("urn:uuid:a", OK_HTML), gz_record("urn:uuid:b", OK_HTML)
    path = tmp_path / "cut-header.warc.gz"
    path.write_bytes(a + b[: len(b) // 2])
    rows = rows_of(path)
    assert [(r["kind"], r.get("error_class")) for r in rows] == [("response", None), ("error", "TruncatedRecord")]


def test_malformed_http_head_is_an_error_row(tmp_path):
    path = tmp_path / "badhttp.warc.gz"
    path.write_bytes(gz_record("urn:uuid:a", b"HTTX garbage\r\nno colon\r\n\r\n<p>x</p>") + gz_record("urn:uuid:b", OK_HTML))
    rows = rows_of(path)
    assert [(r["kind"], r.get("error_class")) for r in rows] == [("error", "MalformedHttp"), ("response", None)]
    assert rows[0]["record_id"] == "urn:uuid:a"


def test_empty_payload_is_a_response(tmp_path):
    path = tmp_path / "empty.warc.gz"
    path.write_bytes(gz_record("urn:uuid:a", http_response(b"")))
    (row,) = rows_of(path)
    assert row["kind"] == "response" and row["payload"] == b"" and row["payload_length"] == 0
    assert row["payload_digest"] == "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"   # sha1 of nothing, base32


def test_payload_cap_sets_truncated_flag_and_keeps_full_digest(tmp_path):
    body = b"<p>" + b"x" * 5000 + b"</p>"
    path = tmp_path / "big.warc.gz"
    path.write_bytes(gz_record("urn:uuid:a", http_response(body)))
    capped, = rows_of(path, max_payload_bytes=100)
    whole, = rows_of(path)
    assert capped["payload"] == body[:100] and capped["payload_truncated"] and capped["payload_length"] == len(body)
    assert not whole["payload_truncated"] and capped["payload_digest"] == whole["payload_digest"]


def test_missing_file_and_unknown_format(tmp_path):
    (missing,) = rows_of(tmp_path / "nope.warc.gz")
    assert missing["error_class"] == "FileNotFound" and missing["source_offset"] is None
    junk = tmp_path / "junk.warc"
    junk.write_bytes(b"\x00\x01\x02 not a warc")
    (row,) = rows_of(junk)
    assert row["error_class"] == "UnrecognisedFormat"


def test_uncompressed_arc(tmp_path):
    body = http_response(b"<html><p>arc page</p></html>")
    version = b"1 0 InternetArchive\nURL IP-address Archive-date Content-type Archive-length\n"
    head = f"filedesc://x.arc 0.0.0.0 20080430204825 text/plain {len(version)}\n".encode() + version
    rec = f"http://a.example/ 1.2.3.4 20080430204826 text/html {len(body)}\n".encode() + body + b"\n"
    path = tmp_path / "x.arc"
    path.write_bytes(head + b"\n" + rec)
    (info, row) = rows_of(path)
    assert info["kind"] == "other"
    assert row["format"] == "ARC/1" and row["target_uri"] == "http://a.example/"
    assert row["payload"] == b"<html><p>arc page</p></html>" and row["warc_date"].year == 2008


# --------------------------------------------------------------------------------------------- helpers

def test_parse_content_type():
    assert parse_content_type('Text/HTML; Charset="UTF-8"') == ("text/html", "utf-8")
    assert parse_content_type(None) == (None, None)
    assert parse_content_type("application/pdf") == ("application/pdf", None)
    assert parse_content_type("text/html; charset=" + "x" * 10_000) == ("text/html", None)      # not a charset name
    assert parse_content_type("text/html; charset=" + "x" * 40) == ("text/html", "x" * 40)


def test_is_html_by_declaration_and_sniffing():
    assert is_html("text/html", b"")
    assert is_html(None, b"  <!DOCTYPE html><html>")
    assert is_html("application/octet-stream", b"<html><body>")
    assert not is_html("application/pdf", b"<html>")
    assert not is_html(None, b"%PDF-1.7")


def test_parse_http_head():
    status, headers, at = parse_http_head(b"HTTP/1.0 404 Not Found\r\ncontent-type: text/html\r\n\r\nbody")
    assert (status, headers, at) == (404, {"Content-Type": "text/html"}, len(b"HTTP/1.0 404 Not Found\r\ncontent-type: text/html\r\n\r\n"))
    assert parse_http_head(b"no status line\r\n\r\n") is None


def test_stub_of_a_record_at_end_of_file_is_reported(tmp_path):
    a, b = gz_record("urn:uuid:a", OK_HTML), gz_record("urn:uuid:b", OK_HTML)
    path = tmp_path / "stub.warc.gz"
    path.write_bytes(a + b[:40])
    rows = rows_of(path)
    assert [(r["kind"], r.get("error_class"), r["source_offset"]) for r in rows] == [
        ("response", None, 0), ("error", "TruncatedRecord", len(a))]

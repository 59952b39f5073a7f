"""2,000 mutated WARC and ARC files through the reader, without Spark (issue 22): bit flips, truncations, spliced
records and edited Content-Lengths, seeded. No exception may escape `read_archive`, and the byte ranges
of a file's outcomes (records and error rows) must cover every byte of it that is not padding, without
overlapping. Plus the Content-Length cases of the issue, each with the records around it kept."""
from __future__ import annotations

import gzip
import hashlib
import random
import re
from datetime import datetime, timezone

import pytest

from jobs.demo.sample_crawl import warc_record
from tests.conftest import http_response
from udfs.warc import ReadOptions, read_archive

DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)
PADDING = b"\r\n\t \x00"
KINDS = {"response", "error", "skipped", "other"}


def _records(rng: random.Random, n: int) -> list[bytes]:
    """A small crawl: warcinfo, then request/response/metadata triples, a dns: response now and then."""
    out = [warc_record("warcinfo", "urn:uuid:info", DATE, b"isPartOf: CC-MAIN-2024-10\r\n", None,
                       "application/warc-fields")]
    for i in range(n):
        uri = f"http://site{i}.example/p/{rng.randrange(10**6)}"
        body = b"<html><body>" + b"".join(b"<p>%d words here</p>" % rng.randrange(10**9)
                                          for _ in range(rng.randrange(1, 40))) + b"</body></html>"
        out.append(warc_record("request", f"urn:uuid:q{i}", DATE, b"GET / HTTP/1.1\r\n\r\n", uri,
                               "application/http; msgtype=request"))
        out.append(warc_record("response", f"urn:uuid:r{i}", DATE, http_response(body), uri))
        out.append(warc_record("metadata", f"urn:uuid:m{i}", DATE, b"fetchTimeMs: 12\r\n", uri,
                               "application/warc-fields"))
        if rng.random() < 0.2:
            out.append(warc_record("response", f"urn:uuid:d{i}", DATE, b"20240101\r\nsite. IN A 1.2.3.4\r\n",
                                   f"dns:site{i}.example", "text/dns"))
    return out


def _arc_records(rng: random.Random, n: int) -> list[bytes]:
    """The same kind of crawl as ARC v1: a filedesc header, then one record per response."""
    version = b"1 0 InternetArchive\nURL IP-address Archive-date Content-type Archive-length\n"
    out = [b"filedesc://x.arc 0.0.0.0 20240101000000 text/plain %d\n" % len(version) + version + b"\n"]
    for i in range(n):
        body = http_response(b"<html><p>%d</p></html>" % rng.randrange(10**9))
        out.append(b"http://site%d.example/ 1.2.3.4 20240101000000 text/html %d\n" % (i, len(body)) + body + b"\n")
    return out


def _edit_length(record: bytes, rng: random.Random) -> bytes:
    if not record.startswith(b"WARC/"):                      # ARC: the header line's last field
        if record.startswith(b"filedesc") or not record.partition(b"\n")[0].rpartition(b" ")[2].isdigit():
            return record                                    # the file header, or edited already
        line, _, rest = record.partition(b"\n")
        head, _, n = line.rpartition(b" ")
        return head + b" " + rng.choice([b"-1", b"x", b"%d" % (int(n) + rng.randrange(1, 500)),
                                         b"%d" % max(0, int(n) - rng.randrange(1, 50))]) + b"\n" + rest
    m = re.search(rb"Content-Length: (\d+)\r\n", record)
    if m is None:                                            # edited already
        return record
    n = int(m.group(1))
    new = rng.choice([b"", b"-5", b"abc", b"%d" % (n + rng.randrange(1, 5000)), b"%d" % max(0, n - rng.randrange(1, 200)),
                      b"99999999999999999999", b"0"])
    if not new:
        return record[:m.start()] + record[m.end():]
    return record[:m.start(1)] + new + record[m.end(1):]


def mutated_file(seed: int) -> tuple[bytes, bool]:
    """A WARC (85%) or ARC file, gzip per record or plain, then mutated; (bytes, gzipped)."""
    rng = random.Random(seed)
    arc = rng.random() < 0.15
    records = (_arc_records if arc else _records)(rng, rng.randrange(1, 6))
    gzipped = rng.random() < 0.6
    if rng.random() < 0.4:                                   # length edits before framing
        for _ in range(rng.randrange(1, 3)):
            i = rng.randrange(len(records))
            records[i] = _edit_length(records[i], rng)
    parts = [gzip.compress(r, mtime=0) for r in records] if gzipped else list(records)
    if gzipped and rng.random() < 0.1:                       # one member for the whole file
        parts = [gzip.compress(b"".join(records), mtime=0)]
    if rng.random() < 0.3:                                   # spliced records: a copy, a half, garbage
        i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
        choice = rng.random()
        insert = parts[j] if choice < 0.3 else parts[j][: rng.randrange(1, len(parts[j]) + 1)] if choice < 0.7 \
            else rng.randbytes(rng.randrange(1, 300))
        parts.insert(i, insert)
    data = bytearray(b"".join(parts))
    if rng.random() < 0.5:                                   # bit flips
        for _ in range(rng.randrange(1, 8)):
            k = rng.randrange(len(data))
            data[k] ^= 1 << rng.randrange(8)
    if rng.random() < 0.3:                                   # truncation
        data = data[: rng.randrange(1, len(data) + 1)]
    return bytes(data), gzipped


def check_coverage(data: bytes, rows: list[dict]) -> None:
    spans = sorted((r["source_offset"], r["source_end"]) for r in rows if r["source_end"] is not None)
    pos = 0
    for start, end in spans:
        assert start >= pos, f"outcomes overlap at {start} (covered up to {pos})"
        assert not data[pos:start].strip(PADDING), f"bytes {pos}..{start} are neither a record nor an error"
        assert end > start
        pos = end
    assert pos <= len(data)
    assert not data[pos:].strip(PADDING), f"bytes {pos}..{len(data)} are neither a record nor an error"
    for r in rows:
        if r["source_end"] is None:      # a record inside a multi-record gzip member: located at the member
            assert any(s == r["source_offset"] for s, _ in spans)


@pytest.mark.parametrize("block", range(8))
def test_mutated_warc_files_never_raise_and_every_byte_is_accounted_for(tmp_path, block):
    per_block = 250                                          # 8 blocks: 2,000 files
    for seed in range(block * per_block, (block + 1) * per_block):
        data, gzipped = mutated_file(seed)
        path = tmp_path / f"f{seed}.{'gz' if gzipped else 'raw'}"
        path.write_bytes(data)
        try:
            rows = list(read_archive(str(path), ReadOptions()))
        except Exception as exc:                             # the assertion this test exists for
            raise AssertionError(f"seed {seed}: {type(exc).__name__} escaped the reader: {exc}") from exc
        *rows, digest = rows                                 # the file's sha256, hashed as the reader went
        assert (digest["kind"], digest["size_bytes"], digest["file_digest"]) == (
            "digest", len(data), "sha256:" + hashlib.sha256(data).hexdigest()), seed
        assert {r["kind"] for r in rows} <= KINDS, seed
        if rows and rows[0].get("error_class") == "UnrecognisedFormat":
            assert len(rows) == 1
            continue
        try:
            check_coverage(data, rows)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc
        for r in rows:
            if r["kind"] == "response":
                assert r["payload_length"] == len(r["payload"]) and r["record_id"]


# ---------------------------------------------------------------------------- Content-Length, one by one

def _file(tmp_path, records: list[bytes], gzipped: bool):
    path = tmp_path / ("f.warc.gz" if gzipped else "f.warc")
    path.write_bytes(b"".join(gzip.compress(r, mtime=0) if gzipped else r for r in records))
    return [(r["kind"], r.get("record_id"), r.get("error_class")) for r in read_archive(str(path), ReadOptions())
            if r["kind"] != "digest"]


def _six(edit: bytes | None) -> list[bytes]:
    out = []
    for i in range(6):
        rec = warc_record("response", f"urn:uuid:{i}", DATE, http_response(b"<html><p>page %d</p></html>" % i),
                          f"http://e.org/{i}")
        if i == 1:
            rec = re.sub(rb"Content-Length: \d+\r\n", b"" if edit is None else b"Content-Length: " + edit + b"\r\n", rec)
        out.append(rec)
    return out


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip-per-record", "uncompressed"])
@pytest.mark.parametrize("edit,error_class", [
    (b"99999", "ContentLengthMismatch"), (b"30", "ContentLengthMismatch"), (None, "MissingContentLength"),
    (b"-5", "BadContentLength"), (b"12x", "BadContentLength"),
], ids=["too-large", "too-small", "missing", "negative", "not-a-number"])
def test_a_bad_content_length_costs_only_its_record(tmp_path, gzipped, edit, error_class):
    rows = _file(tmp_path, _six(edit), gzipped)
    assert rows == [("response", "urn:uuid:0", None), ("error", "urn:uuid:1", error_class)] + [
        ("response", f"urn:uuid:{i}", None) for i in range(2, 6)]

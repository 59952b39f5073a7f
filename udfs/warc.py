"""Reading WARC and ARC files record by record: the kernel under `lakesift ingest`.

Formats
- WARC 1.0 / 1.1 (ISO 28500) and the pre-ISO WARC/0.17 draft, gzip per record or uncompressed, through
  FastWARC (strict parsing: its quirks mode silently drops a record that follows garbage bytes).
- ARC v1 (Internet Archive "ARC file format" 1.0), which FastWARC does not read, through a small reader
  of our own: a header line `URL IP archive-date content-type length`, then `length` bytes.

Every response becomes a row; everything unreadable becomes an error row with its byte offset, and
reading resumes at the next record start (next gzip member, or next `WARC/` line), so one bad record never
costs the rest of the file. Files are streamed; at most one record's payload is held in memory.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Iterator

GZIP_MAGIC = b"\x1f\x8b\x08"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/html", "text/xhtml"})
_CC_CRAWL = re.compile(r"CC-MAIN-\d{4}-\d{2}")
_CRAWL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_READ_CHUNK = 1 << 20


# Common Crawl itself truncates at 1 MiB; 5 MiB keeps long pages whole. Also the cap on a body once its
# content coding is undone (udfs/extract.py): no page is worth more, and a decompression bomb stops there.
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ReadOptions:
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    crawl: str | None = None                   # overrides the crawl id found in the file

    def __post_init__(self) -> None:
        if self.max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")


# ---------------------------------------------------------------------------------------------- helpers

def sha1_digest(h: "hashlib._Hash") -> str:
    """WARC-style digest label: sha1:<base32>."""
    return "sha1:" + base64.b32encode(h.digest()).decode("ascii")


def sanitize_crawl(crawl: str) -> str:
    """Crawl ids become partition values and path segments: keep them to [A-Za-z0-9._-]."""
    cleaned = _CRAWL_UNSAFE.sub("-", crawl.strip()).strip("-.")
    return cleaned[:128] or "unknown"


def crawl_from_path(path: str) -> str | None:
    m = _CC_CRAWL.search(path)
    return m.group(0) if m else None


def is_html(content_type: str | None, payload_head: bytes) -> bool:
    """HTML by declaration; an undeclared or generic type counts when the payload starts like HTML."""
    if content_type in HTML_TYPES:
        return True
    if content_type not in (None, "", "application/octet-stream", "unknown/unknown", "text/plain"):
        return False
    head = payload_head[:512].lstrip().lower()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    return head.startswith((b"<!doctype html", b"<html")) or (content_type is None and b"<html" in head)


MAX_CHARSET = 40        # characters: RFC 2978 caps IANA charset names at 40


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """'Text/HTML; charset="UTF-8"' -> ('text/html', 'utf-8'). A charset longer than any registered name
    (MAX_CHARSET) is not one: it is dropped, never stored."""
    if not value:
        return None, None
    parts = value.split(";")
    mime = parts[0].strip().lower() or None
    charset = None
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip("'\"").lower() or None
    return mime, (charset if charset and len(charset) <= MAX_CHARSET else None)


def open_stream(path: str) -> BinaryIO:
    """A seekable binary stream for a local path, file:// URL, or any fsspec URL (s3://, https://, dbfs:/)."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    if "://" not in path:
        return open(path, "rb", buffering=_READ_CHUNK)
    if path.startswith("dbfs:/") and os.path.isdir("/dbfs"):
        return open("/dbfs/" + path[len("dbfs:/"):].lstrip("/"), "rb", buffering=_READ_CHUNK)
    import fsspec  # only for remote files; raises ImportError naming the missing backend (s3fs, …)

    return fsspec.open(path, "rb").open()


# --------------------------------------------------------------------------------------------- outcomes

def _error(source: str, offset: int | None, error_class: str, message: str, record_id: str | None = None) -> dict:
    return {
        "kind": "error", "source_file": source, "source_offset": offset, "record_id": record_id,
        "error_class": error_class, "message": message[:2000],
    }


def _skipped(source: str, offset: int, reason: str) -> dict:
    """A record that is not an HTTP response (dns:, whois:, …): counted per file, never stored."""
    return {"kind": "skipped", "source_file": source, "source_offset": offset, "message": reason}


def _is_http_block(warc_content_type: str | None, target_uri: str | None) -> bool:
    if warc_content_type:
        return warc_content_type.strip().lower().startswith("application/http")
    return (target_uri or "").lower().startswith(("http://", "https://"))


def _response(
    *, source: str, offset: int, crawl: str, fmt: str, record_id: str, target_uri: str | None,
    warc_date: datetime | None, status: int | None, content_type_header: str | None,
    content_encoding: str | None, transfer_encoding: str | None, payload: bytes, payload_length: int,
    digest: str, truncated: bool,
) -> dict:
    mime, charset = parse_content_type(content_type_header)
    return {
        "kind": "response", "record_id": record_id, "crawl": crawl, "target_uri": target_uri,
        "source_file": source, "source_offset": offset, "format": fmt, "warc_date": warc_date,
        "http_status": status, "content_type": mime, "declared_charset": charset,
        "content_encoding": (content_encoding or "").strip().lower() or None,
        "transfer_encoding": (transfer_encoding or "").strip().lower() or None,
        "is_html": is_html(mime, payload), "payload": payload, "payload_length": payload_length,
        "payload_truncated": truncated, "payload_digest": digest,
    }


def _read_capped(reader, cap: int) -> tuple[bytes, int, str]:
    """Read a whole body in chunks: keep the first `cap` bytes, hash and count all of it."""
    h = hashlib.sha1()
    kept = bytearray()
    total = 0
    while True:
        chunk = reader.read(_READ_CHUNK)
        if not chunk:
            break
        h.update(chunk)
        total += len(chunk)
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
    return bytes(kept), total, sha1_digest(h)


# ------------------------------------------------------------------------------------------ resync

def _gzip_member_end(stream: BinaryIO, start: int) -> int | None:
    """Compressed end offset of the gzip member starting at `start`, or None if it does not end cleanly."""
    stream.seek(start)
    d = zlib.decompressobj(31)
    pos = start
    try:
        while not d.eof:
            chunk = stream.read(1 << 16)
            if not chunk:
                return None
            d.decompress(chunk)
            pos += len(chunk)
        return pos - len(d.unused_data)
    except zlib.error:
        return None


def _plain_record_end(stream: BinaryIO, start: int) -> int | None:
    """End of an uncompressed WARC record: header, Content-Length bytes of block, then CRLF CRLF."""
    stream.seek(start)
    head = stream.read(1 << 16)
    end = head.find(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head[:end] if end >= 0 else b"")
    if end < 0 or not m:
        return None
    return start + end + 4 + int(m.group(1)) + 4


def _looks_like_record_start(stream: BinaryIO, pos: int, gzipped: bool) -> bool:
    stream.seek(pos)
    raw = stream.read(4096)
    if gzipped:
        try:
            head = zlib.decompressobj(31).decompress(raw, 64)
        except zlib.error:
            return False
        return head.startswith((b"WARC/", b"filedesc://")) or bool(re.match(rb"\S+ \S+ \d{14} ", head))
    return bool(re.match(rb"WARC/\d+\.\d+\r?\n", raw)) and b"WARC-Type:" in raw[:2048]


def _next_record_start(stream: BinaryIO, after: int, gzipped: bool) -> int | None:
    """First plausible record start strictly after `after`: a gzip member, or a `WARC/<digit>` line."""
    needle = GZIP_MAGIC if gzipped else b"WARC/"
    pos = after + 1
    while True:
        stream.seek(pos)
        window = stream.read(_READ_CHUNK + len(needle))
        if len(window) < len(needle):
            return None
        i = window.find(needle)
        while i >= 0:
            if _looks_like_record_start(stream, pos + i, gzipped):
                return pos + i
            i = window.find(needle, i + 1)
        pos += _READ_CHUNK


def _is_gzipped(stream: BinaryIO) -> bool:
    stream.seek(0)
    return stream.read(3) == GZIP_MAGIC


def _sniff(stream: BinaryIO, gzipped: bool) -> bytes:
    stream.seek(0)
    raw = stream.read(1 << 16)
    if gzipped:
        try:
            return zlib.decompressobj(31).decompress(raw, 256)
        except zlib.error:
            return b""
    return raw[:256]


# ------------------------------------------------------------------------------------------------ WARC

def _warcinfo_crawl(record) -> str | None:
    body = record.reader.read(1 << 16)
    m = re.search(rb"(?im)^ispartof:\s*(\S+)", body)
    return m.group(1).decode("utf-8", "replace") if m else None


def _iter_warc(stream: BinaryIO, source: str, opts: ReadOptions, gzipped: bool) -> Iterator[dict]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    crawl = opts.crawl or crawl_from_path(source)
    base = 0
    while True:
        stream.seek(base)
        last_start: int | None = None
        produced_here = False
        try:
            # Every record type is iterated (others are skipped here), so the end of the last record is known.
            it = ArchiveIterator(stream, record_types=WarcRecordType.any_type, parse_http=False, auto_decode="none")
            for rec in it:
                start = rec.stream_pos  # absolute: FastWARC starts counting at the stream's position
                last_start = start
                produced_here = True
                if rec.record_type not in (WarcRecordType.warcinfo, WarcRecordType.response):
                    continue
                if rec.record_type == WarcRecordType.warcinfo:
                    if crawl is None:
                        found = _warcinfo_crawl(rec)
                        crawl = found
                    continue
                yield from _warc_response(rec, start, source, crawl, opts)
            tail = _unread_tail(stream, base, last_start, produced_here, gzipped)
            if tail is not None:
                yield _error(source, tail[0], "TruncatedRecord",
                             f"{tail[1]} bytes after the last readable record do not form a complete record")
            return
        except (OSError, ValueError, RuntimeError) as exc:
            failed_at = _failure_offset(stream, base, last_start, produced_here, gzipped)
            resume = _next_record_start(stream, failed_at, gzipped)
            skipped = f"resumed at offset {resume}" if resume is not None else "no readable record after it"
            yield _error(source, failed_at, "CorruptBytes", f"{type(exc).__name__}: {exc}; {skipped}")
            if resume is None:
                return
            base = resume


def _unread_tail(stream: BinaryIO, base: int, last_start: int | None, produced: bool,
                 gzipped: bool) -> tuple[int, int] | None:
    """(offset, size) of bytes left after the iterator stopped at end of input, ignoring padding."""
    end = _failure_offset(stream, base, last_start, produced, gzipped)
    if produced and end == last_start:
        return None          # the last record's end is unknown; it was read, so nothing is lost
    stream.seek(end)
    rest = stream.read(1 << 16)
    if not rest.strip(b"\x00\r\n \t"):
        return None
    stream.seek(0, os.SEEK_END)
    return end, stream.tell() - end


def _failure_offset(stream: BinaryIO, base: int, last_start: int | None, produced: bool, gzipped: bool) -> int:
    """Where the unreadable bytes begin: the end of the last good record, or the restart point itself."""
    if not produced or last_start is None:
        return base
    end = _gzip_member_end(stream, last_start) if gzipped else _plain_record_end(stream, last_start)
    return end if end is not None else last_start


def _warc_response(rec, start: int, source: str, crawl: str | None, opts: ReadOptions) -> Iterator[dict]:
    headers = rec.headers
    record_id = (headers.get("WARC-Record-ID") or "").strip().strip("<>")
    version = (headers.status_line or "WARC/1.0").strip()
    target_uri = (headers.get("WARC-Target-URI") or "").strip().strip("<>") or None
    if headers.get("Content-Length") is None:    # FastWARC yields what it has when the file ends mid-header
        yield _error(source, start, "TruncatedRecord", "record header block ends before Content-Length",
                     record_id or None)
        return
    if not _is_http_block(headers.get("Content-Type"), target_uri):
        yield _skipped(source, start, f"not an HTTP response: {headers.get('Content-Type')} {target_uri}")
        return
    if not record_id:
        yield _error(source, start, "MalformedRecord", "response record without WARC-Record-ID")
        return
    declared = rec.content_length
    try:
        rec.parse_http()
    except Exception as exc:  # FastWARC raises on an unparseable status line or header block
        yield _error(source, start, "MalformedHttp", f"{type(exc).__name__}: {exc}", record_id)
        return
    http = rec.http_headers
    if http is None or http.status_code is None:
        yield _error(source, start, "MalformedHttp", "HTTP status line missing or unreadable", record_id)
        return
    body_expected = rec.content_length
    payload, total, digest = _read_capped(rec.reader, opts.max_payload_bytes)
    if total < body_expected:
        yield _error(
            source, start, "TruncatedRecord",
            f"record declares {declared} bytes but the file ends after {total} of {body_expected} body bytes",
            record_id,
        )
        return
    crawler_truncated = bool((headers.get("WARC-Truncated") or "").strip())
    yield _response(
        source=source, offset=start, crawl=sanitize_crawl(crawl or "unknown"), fmt=version,
        record_id=record_id, target_uri=target_uri,
        warc_date=_warc_date(rec), status=int(http.status_code),
        content_type_header=http.get("Content-Type"), content_encoding=http.get("Content-Encoding"),
        transfer_encoding=http.get("Transfer-Encoding"), payload=payload, payload_length=total,
        digest=digest, truncated=crawler_truncated or total > len(payload),
    )


def _warc_date(rec) -> datetime | None:
    try:
        d = rec.record_date
    except Exception:
        d = None
    if d is None:
        return _parse_iso_date(rec.headers.get("WARC-Date"))
    return d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _parse_iso_date(value: str | None) -> datetime | None:
    if not value:
        return None
    v = value.strip().replace("Z", "+00:00")
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        return None
    return d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------------- ARC

def _arc_records(stream: BinaryIO, gzipped: bool) -> Iterator[tuple[int, bytes]]:
    """(offset, record bytes) for each ARC record; raises zlib.error/ValueError at corrupt data."""
    if gzipped:
        pos = stream.tell()
        buf = b""
        while True:
            if not buf:
                buf = stream.read(1 << 16)
                if not buf:
                    return
            d = zlib.decompressobj(31)
            out = []
            start = pos
            while True:
                out.append(d.decompress(buf))
                if d.eof:
                    pos += len(buf) - len(d.unused_data)
                    buf = d.unused_data
                    break
                pos += len(buf)
                buf = stream.read(1 << 16)
                if not buf:
                    raise ValueError(f"gzip member at offset {start} ends before its trailer")
            yield start, b"".join(out)
    else:
        while True:
            start = stream.tell()
            line = stream.readline()
            while line in (b"\n", b"\r\n"):
                start = stream.tell()
                line = stream.readline()
            if not line:
                return
            length = _arc_length(line)
            body = stream.read(length)
            if len(body) < length:
                raise ValueError(f"ARC record at offset {start} declares {length} bytes, file ends after {len(body)}")
            yield start, line + body


def _arc_length(header_line: bytes) -> int:
    fields = header_line.split()
    if len(fields) < 5 or not fields[-1].isdigit():
        raise ValueError(f"not an ARC record header: {header_line[:120]!r}")
    return int(fields[-1])


def parse_http_head(block: bytes) -> tuple[int, dict[str, str], int] | None:
    """Status code, headers (last one wins, names title-cased) and body offset of an HTTP response."""
    end = block.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = block.find(b"\n\n")
        sep = 2
    if end < 0:
        return None
    lines = block[:end].decode("iso-8859-1").splitlines()
    m = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", lines[0].strip()) if lines else None
    if not m:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, colon, v = line.partition(":")
        if colon:
            headers[k.strip().title()] = v.strip()
    return int(m.group(1)), headers, end + sep


def _iter_arc(stream: BinaryIO, source: str, opts: ReadOptions, gzipped: bool) -> Iterator[dict]:
    crawl = sanitize_crawl(opts.crawl or crawl_from_path(source) or "unknown")
    base = 0
    while True:
        stream.seek(base)
        last = None
        try:
            for offset, record in _arc_records(stream, gzipped):
                last = offset
                nl = record.find(b"\n")
                header, content = record[:nl], record[nl + 1:]
                fields = header.decode("utf-8", "replace").split()
                url = fields[0] if fields else ""
                if url.startswith("filedesc://"):
                    continue
                if not url.lower().startswith(("http://", "https://")):
                    yield _skipped(source, offset, f"not an HTTP response: {url[:200]}")
                    continue
                length = _arc_length(header)
                if len(content) < length:
                    yield _error(source, offset, "TruncatedRecord", f"ARC record declares {length} bytes, has {len(content)}")
                    continue
                content = content[:length]
                head = parse_http_head(content)
                record_id = "urn:lakesift:arc:" + hashlib.sha1(f"{url} {fields[2]} {offset}".encode()).hexdigest()
                if head is None:
                    yield _error(source, offset, "MalformedHttp", "ARC record without a readable HTTP response head", record_id)
                    continue
                status, headers, body_at = head
                body = content[body_at:]
                h = hashlib.sha1(body)
                yield _response(
                    source=source, offset=offset, crawl=crawl, fmt="ARC/1", record_id=record_id, target_uri=url,
                    warc_date=_arc_date(fields[2] if len(fields) > 2 else ""), status=status,
                    content_type_header=headers.get("Content-Type"), content_encoding=headers.get("Content-Encoding"),
                    transfer_encoding=headers.get("Transfer-Encoding"), payload=body[: opts.max_payload_bytes],
                    payload_length=len(body), digest=sha1_digest(h), truncated=len(body) > opts.max_payload_bytes,
                )
            return
        except (zlib.error, ValueError, OSError) as exc:
            failed_at = base if last is None else (_gzip_member_end(stream, last) if gzipped else last) or last
            resume = _next_record_start(stream, failed_at, gzipped) if gzipped else None
            tail = f"resumed at offset {resume}" if resume is not None else "no readable record after it"
            yield _error(source, failed_at, "CorruptBytes", f"{type(exc).__name__}: {exc}; {tail}")
            if resume is None:
                return
            base = resume


def _arc_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- entry point

def read_archive(path: str, opts: ReadOptions) -> Iterator[dict]:
    """Every HTTP response of one WARC/ARC file as a row dict (kind='response'), every problem as
    kind='error', every non-HTTP response record (dns:, …) as kind='skipped'.

    Never raises for bad input: a missing file, an unknown format or corrupt bytes become error rows.
    """
    try:
        stream = open_stream(path)
    except FileNotFoundError as exc:
        yield _error(path, None, "FileNotFound", f"no such file: {exc.filename or path}")
        return
    except Exception as exc:  # permissions, network, missing fsspec backend: the file is unreadable
        yield _error(path, None, "ReadError", f"{type(exc).__name__}: {exc}")
        return
    with stream:
        try:
            gzipped = _is_gzipped(stream)
            head = _sniff(stream, gzipped)
        except OSError as exc:
            yield _error(path, None, "ReadError", f"{type(exc).__name__}: {exc}")
            return
        if head.startswith(b"WARC/"):
            yield from _iter_warc(stream, path, opts, gzipped)
        elif head.startswith(b"filedesc://"):
            yield from _iter_arc(stream, path, opts, gzipped)
        elif not head:
            yield _error(path, 0, "UnrecognisedFormat", "empty file or unreadable gzip header")
        else:
            yield _error(path, 0, "UnrecognisedFormat", f"neither WARC nor ARC: starts with {head[:40]!r}")

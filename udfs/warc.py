"""Reading WARC and ARC files record by record: the kernel under `lakesift ingest`.

Formats: WARC 1.0 / 1.1 (ISO 28500) and the pre-ISO WARC/0.17 draft; ARC v1 (Internet Archive "ARC
file format" 1.0: a line `URL IP archive-date content-type length`, then `length` bytes). Each plain, or
gzipped with a member per record (or several records, or the whole file, in one member).

Our own reader, not FastWARC: FastWARC trusts Content-Length, and one wrong value swallowed the records
after it. A record's block must end where its length says, followed by CR LF CR LF (WARC) or a newline
(ARC) and then the end of its gzip member or the next record; in a gzip member it must also end inside
the member. Every record becomes an outcome row (response, skipped for non-HTTP responses such as dns:,
other for warcinfo/request/metadata/…), everything unreadable an error row with a truthful class
(CorruptBytes, CorruptGzip, TruncatedRecord, MissingContentLength, BadContentLength,
ContentLengthMismatch, OversizedHeader, OversizedRecord, MalformedRecord, MalformedHttp), and reading
resumes at the next record header in the same source, then at the next gzip member. Every outcome carries
its byte range (`source_offset`, `source_end`: a record inside a multi-record member is located at the
member, and only the member's last outcome carries its end), so a file's outcomes cover all of it
(tests/hostile/test_warc_fuzz.py). Files are streamed: at most one record's payload (capped) is held.
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

from isal import isal_zlib      # zlib's interface, 2.3x its inflate speed on WARC members (ISA-L)

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


def _is_http_block(warc_content_type: str | None, target_uri: str | None) -> bool:
    if warc_content_type:
        return warc_content_type.strip().lower().startswith("application/http")
    return (target_uri or "").lower().startswith(("http://", "https://"))


# ------------------------------------------------------------------------------------ gzip and sniffing

def _starts_a_record(stream: BinaryIO, pos: int) -> bool:
    """Whether a gzip member at `pos` begins like a WARC or ARC record."""
    stream.seek(pos)
    try:
        head = zlib.decompressobj(31).decompress(stream.read(4096), 64)
    except zlib.error:
        return False
    return head.startswith((b"WARC/", b"filedesc://")) or bool(re.match(rb"\S+ \S+ \d{14} ", head))


def _next_member_start(stream: BinaryIO, after: int) -> int | None:
    """The first gzip member strictly after `after` that begins like a record (or None)."""
    pos = after + 1
    while True:
        stream.seek(pos)
        window = stream.read(_READ_CHUNK + len(GZIP_MAGIC))
        if len(window) < len(GZIP_MAGIC):
            return None
        i = window.find(GZIP_MAGIC)
        while i >= 0:
            if _starts_a_record(stream, pos + i):
                return pos + i
            i = window.find(GZIP_MAGIC, i + 1)
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

MAX_HEADER_BYTES = 1 << 20          # a WARC header block longer than this is not one
MAX_HTTP_HEAD_BYTES = 1 << 20       # nor an HTTP head longer than this
MAX_RECORD_BYTES = 4 << 30          # a larger block is refused (it bounds the time a gzip bomb can cost)
_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\r?\n")
_RECORD_START = re.compile(rb"WARC/\d+\.\d+\r?\n(?:[^\r\n]*\r?\n){0,40}?WARC-(?:Type|Record-ID):", re.I)
_PADDING = b"\r\n\t \x00"
_SCAN_AHEAD = 4096                  # a record header is recognised within this many bytes


class _Unreadable(Exception):
    """A record that cannot be read: its error class and message (and its id once the header was read)."""

    def __init__(self, error_class: str, message: str, record_id: str | None = None):
        super().__init__(message)
        self.error_class, self.message, self.record_id = error_class, message, record_id


class _SourceEnded(Exception):
    """The source ended before a record did (inside its block, or before); the caller names the error."""

    def __init__(self, what: str, record_id: str | None = None, in_block: bool = False):
        super().__init__(what)
        self.what, self.record_id, self.in_block = what, record_id, in_block


class _MemberBroken(Exception):
    """A gzip member that cannot be read to its end (corrupt deflate data, a bad trailer, or the end of
    the file): the whole member is one error row."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class, self.message, self.record_id = error_class, message, None


class _Bytes:
    """Forward reading over `raw(n)` (b'' at the end) with peek, bounded readline and a scan for the next
    record header; `consumed` counts the bytes handed out."""

    __slots__ = ("_raw", "_buf", "consumed", "_ended")

    def __init__(self, raw) -> None:
        self._raw, self._buf, self.consumed, self._ended = raw, bytearray(), 0, False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._ended:
            chunk = self._raw(max(n - len(self._buf), _READ_CHUNK))
            if chunk:
                self._buf += chunk
            else:
                self._ended = True

    def at_end(self) -> bool:
        self._fill(1)
        return not self._buf

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._buf[:n])

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += len(out)
        return out

    def readline(self, limit: int) -> bytes:
        """Up to and including the next LF, at most `limit` bytes."""
        searched = 0
        while True:
            i = self._buf.find(b"\n", searched, limit)
            if i >= 0:
                return self.read(i + 1)
            if len(self._buf) >= limit or self._ended:
                return self.read(limit)
            searched = len(self._buf)
            self._fill(len(self._buf) + 1)

    def skip(self, chars: bytes) -> None:
        while True:
            self._fill(1)
            n = 0
            while n < len(self._buf) and self._buf[n] in chars:
                n += 1
            if n == 0:
                return
            self.read(n)

    def scan_to(self, start: re.Pattern) -> bool:
        """Drop bytes up to the next match of `start` (a record header); False (all dropped) if none."""
        while True:
            self._fill(len(self._buf) + _SCAN_AHEAD)
            m = start.search(self._buf)
            if m is not None:
                self.read(m.start())
                return True
            if self._ended:
                self.read(len(self._buf))
                return False
            self.read(max(len(self._buf) - _SCAN_AHEAD, 0))      # a header may begin in the last bytes


class _Member:
    """`read(n)`: the decompressed bytes of the gzip member at `start`; `end` is set once it ended intact
    (zlib checks the CRC and length in its trailer); _MemberBroken if it cannot be read to its end."""

    def __init__(self, stream: BinaryIO, start: int) -> None:
        self._stream, self.start, self.end = stream, start, None
        self._d, self._fed = isal_zlib.decompressobj(31), 0
        stream.seek(start)

    def read(self, n: int) -> bytes:
        d = self._d
        while not d.eof:
            data = d.unconsumed_tail
            if not data:
                data = self._stream.read(1 << 16)
                if not data:
                    raise _MemberBroken("TruncatedRecord", f"the file ends inside the gzip member at offset {self.start}")
                self._fed += len(data)
            try:
                out = d.decompress(data, n)
            except isal_zlib.error as exc:
                raise _MemberBroken("CorruptGzip", f"gzip member at offset {self.start}: {exc}") from None
            if out:
                return out
        if self.end is None:
            self.end = self.start + self._fed - len(d.unused_data)
        return b""


def _fields(src: _Bytes, record_id_hint: list) -> dict[str, str]:
    """The named fields of a record header (names lower-cased; folded lines joined), up to the blank line."""
    fields: dict[str, str] = {}
    size, last = 0, None
    while True:
        line = src.readline(MAX_HEADER_BYTES - size + 1)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise _Unreadable("OversizedHeader", f"record header longer than {MAX_HEADER_BYTES} bytes",
                              fields.get("warc-record-id"))
        if not line.endswith(b"\n"):
            raise _SourceEnded("the record header", _clean_id(fields.get("warc-record-id")))
        if line in (b"\r\n", b"\n"):
            return fields
        if line[:1] in (b" ", b"\t") and last is not None:
            fields[last] += " " + line.strip().decode("utf-8", "replace")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise _Unreadable("MalformedRecord", f"header line is not 'Name: value': {line[:80]!r}",
                              _clean_id(fields.get("warc-record-id")))
        last = name.strip().decode("ascii", "replace").lower()
        fields[last] = value.strip().decode("utf-8", "replace")
        if last == "warc-record-id":
            record_id_hint[0] = _clean_id(fields[last])


def _clean_id(value: str | None) -> str | None:
    return (value or "").strip().strip("<>") or None


def _block_length(fields: dict[str, str], record_id: str | None) -> int:
    value = fields.get("content-length")
    if value is None:
        raise _Unreadable("MissingContentLength", "record header has no Content-Length", record_id)
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise _Unreadable("BadContentLength", f"Content-Length {value[:40]!r} is not a byte count", record_id)
    length = int(value)
    if length > MAX_RECORD_BYTES:
        raise _Unreadable("OversizedRecord", f"Content-Length {length} is over {MAX_RECORD_BYTES} bytes", record_id)
    return length


class _Block:
    """Exactly `length` bytes of `src`; _SourceEnded if the source ends first."""

    def __init__(self, src: _Bytes, length: int, record_id: str | None) -> None:
        self.src, self.left, self.length, self.record_id = src, length, length, record_id

    def read(self, n: int = _READ_CHUNK) -> bytes:
        want = min(n, self.left)
        if want <= 0:
            return b""
        out = self.src.read(want)
        self.left -= len(out)
        if len(out) < want:
            raise _SourceEnded(f"the block ({self.length - self.left} of its {self.length} bytes)", self.record_id, True)
        return out

    def drain(self) -> None:
        while self.read():
            pass


def _read_record(src: _Bytes, state: dict, opts: ReadOptions) -> dict:
    """The record at the start of `src` as an outcome row without its location; consumes the record, its
    block and the CR/LF after it. Raises _Unreadable or _SourceEnded."""
    line = src.readline(64)
    if not _VERSION_LINE.fullmatch(line):
        if not line.endswith(b"\n") and src.at_end() and b"WARC/".startswith(line[:5]):
            raise _SourceEnded("the record header")
        raise _Unreadable("CorruptBytes", f"no WARC record starts here: {line[:40]!r}")
    hint: list = [None]
    try:
        fields = _fields(src, hint)
    except (_SourceEnded, _MemberBroken) as ended:
        ended.record_id = hint[0]
        raise
    record_id = _clean_id(fields.get("warc-record-id"))
    try:
        return _record_block(src, fields, line, record_id, state, opts)
    except _MemberBroken as broken:
        broken.record_id = record_id
        raise


def _record_block(src: _Bytes, fields: dict[str, str], line: bytes, record_id: str | None, state: dict,
                  opts: ReadOptions) -> dict:
    block = _Block(src, _block_length(fields, record_id), record_id)
    kind = fields.get("warc-type", "").strip().lower()
    if kind == "response":
        out = _response_block(block, fields, line.strip().decode("ascii"), record_id, state, opts)
    else:
        if kind == "warcinfo" and state["crawl"] is None:
            m = re.search(rb"(?im)^ispartof:\s*(\S+)", block.read(1 << 16))
            state["crawl"] = m.group(1).decode("utf-8", "replace") if m else None
        out = {"kind": "other", "record_id": record_id, "message": kind or "untyped"}
    block.drain()
    after = src.peek(5)
    if not (after[:4] == b"\r\n\r\n" or after[:2] == b"\n\n" or after in (b"", b"WARC/")):
        raise _Unreadable("ContentLengthMismatch", f"Content-Length {block.length} ends the block early: "
                                                   f"{after[:4]!r} follows it, not CR LF CR LF", record_id)
    src.skip(b"\r\n")
    return out


def _response_block(block: _Block, fields: dict[str, str], version: str, record_id: str | None, state: dict,
                    opts: ReadOptions) -> dict:
    target_uri = _clean_id(fields.get("warc-target-uri"))
    if not _is_http_block(fields.get("content-type"), target_uri):
        return {"kind": "skipped", "record_id": record_id,
                "message": f"not an HTTP response: {fields.get('content-type')} {target_uri}"}
    if record_id is None:
        return {"kind": "error", "record_id": None, "error_class": "MalformedRecord",
                "message": "response record without WARC-Record-ID"}
    return _http_response(block, opts, record_id=record_id, crawl=state["crawl"], fmt=version, target_uri=target_uri,
                          warc_date=_parse_iso_date(fields.get("warc-date")),
                          crawler_truncated=bool(fields.get("warc-truncated", "").strip()))


def _http_response(block: _Block, opts: ReadOptions, *, record_id: str, crawl: str | None, fmt: str,
                   target_uri: str | None, warc_date: datetime | None, crawler_truncated: bool) -> dict:
    """A response row from an HTTP response block: its head parsed, its body streamed (the first
    max_payload_bytes kept, all of it hashed and counted); an error row if the head is unreadable."""
    head = block.read(min(block.length, 1 << 16))
    while b"\r\n\r\n" not in head and b"\n\n" not in head and block.left and len(head) < MAX_HTTP_HEAD_BYTES:
        head += block.read(1 << 16)
    parsed = parse_http_head(head)
    if parsed is None:
        return {"kind": "error", "record_id": record_id, "error_class": "MalformedHttp",
                "message": f"HTTP status line or header block unreadable: {head[:80]!r}"}
    status, http, body_at = parsed
    h = hashlib.sha1()
    first = head[body_at:]
    h.update(first)
    kept, total = bytearray(first[: opts.max_payload_bytes]), len(first)
    while chunk := block.read():
        h.update(chunk)
        total += len(chunk)
        if len(kept) < opts.max_payload_bytes:
            kept += chunk[: opts.max_payload_bytes - len(kept)]
    mime, charset = parse_content_type(http.get("Content-Type"))
    payload = bytes(kept)
    return {
        "kind": "response", "record_id": record_id, "crawl": sanitize_crawl(crawl or "unknown"),
        "target_uri": target_uri, "format": fmt, "warc_date": warc_date, "http_status": status,
        "content_type": mime, "declared_charset": charset,
        "content_encoding": (http.get("Content-Encoding") or "").strip().lower() or None,
        "transfer_encoding": (http.get("Transfer-Encoding") or "").strip().lower() or None,
        "is_html": is_html(mime, payload), "payload": payload, "payload_length": total,
        "payload_truncated": crawler_truncated or total > len(payload), "payload_digest": sha1_digest(h),
    }


def _records(open_at, state: dict, opts: ReadOptions, fmt: "_Format", file_ends: bool) -> Iterator[tuple[dict, int, int]]:
    """(outcome, start, end) for each record of one source, positions within the source. `open_at(k)`
    opens the source at position k: after an unreadable record, reading resumes at the first record
    header after its start (its block may hold the next records when its length was too large).
    `file_ends`: the source ends where the file does (else it is a gzip member, which ends by itself)."""
    src, base = open_at(0), 0
    while True:
        src.skip(b"\r\n")
        if src.at_end():
            return
        start = base + src.consumed
        state["at"] = start if state.get("member") is None else state["member"]
        try:
            out = fmt.read(src, state, opts)
            yield out, start, base + src.consumed
            continue
        except _Unreadable as exc:
            error_class, message, record_id, ended = exc.error_class, exc.message, exc.record_id, None
        except _SourceEnded as exc:
            error_class, message, record_id, ended = "", exc.what, exc.record_id, exc
        src, base = open_at(start + 1), start + 1
        found = src.scan_to(fmt.start)
        resume = base + src.consumed
        if ended is not None:
            if found:
                error_class, message = "ContentLengthMismatch", f"the block runs past the next record, {resume - start} bytes on"
            elif ended.in_block and not file_ends:
                error_class, message = "ContentLengthMismatch", f"the gzip member ends inside {message}"
            else:
                error_class, message = "TruncatedRecord", f"the file ends inside {message}"
        message += "; " + _resumed(resume if found else None)
        yield {"kind": "error", "record_id": record_id, "error_class": error_class, "message": message}, start, resume
        if not found:
            return


def _iter_archive(stream: BinaryIO, source: str, opts: ReadOptions, gzipped: bool, fmt: "_Format") -> Iterator[dict]:
    """Every outcome of one WARC or ARC file, plain or gzipped (a record per member, or several)."""
    state = {"crawl": opts.crawl or crawl_from_path(source), "member": None}
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    if not gzipped:
        def open_at(k: int) -> _Bytes:
            stream.seek(k)
            return _Bytes(stream.read)

        for out, start, end in _records(open_at, state, opts, fmt, True):
            yield _located(out, source, start, end)
        return
    pos = 0
    while pos < size:
        stream.seek(pos)
        if stream.read(3) != GZIP_MAGIC:
            stream.seek(pos)
            if not stream.read(1 << 16).strip(_PADDING) and size - pos <= 1 << 16:
                return
            resume = _next_member_start(stream, pos)
            yield _located({"kind": "error", "record_id": None, "error_class": "CorruptBytes",
                            "message": f"{(resume or size) - pos} bytes that are not a gzip member; "
                                       + _resumed(resume)},
                           source, pos, resume or size)
            if resume is None:
                return
            pos = resume
            continue
        yield from _member_outcomes(stream, pos, size, source, state, opts, fmt)
        pos = state.pop("next")


def _member_outcomes(stream: BinaryIO, pos: int, size: int, source: str, state: dict, opts: ReadOptions,
                     fmt: "_Format") -> Iterator[dict]:
    """The outcomes of the gzip member at `pos` (usually one record), located at the member. Each outcome
    waits for the next one, so a record is only yielded once the bytes after it were read (for the last,
    the member's CRC). Sets state['next'] to where reading goes on."""
    member: list[_Member] = []

    def open_at(k: int) -> _Bytes:
        member[:] = [_Member(stream, pos)]
        src = _Bytes(member[0].read)
        while k - src.consumed > 0 and src.read(min(k - src.consumed, _READ_CHUNK)):
            pass
        return src

    pending: dict | None = None
    state["member"] = pos
    try:
        for out, _, _ in _records(open_at, state, opts, fmt, False):
            if pending is not None:
                yield _located(pending, source, pos, None)
            pending = out
        end = member[0].end
        yield _located(pending or {"kind": "other", "record_id": None, "message": "empty gzip member"}, source, pos, end)
        state["next"] = end
        return
    except _MemberBroken as exc:
        error_class, message, record_id = exc.error_class, exc.message, exc.record_id
    finally:
        state["member"] = None
    resume = _next_member_start(stream, pos)
    record_id = record_id or (pending or {}).get("record_id")
    yield _located({"kind": "error", "record_id": record_id, "error_class": error_class,
                    "message": f"{message}; {_resumed(resume)}"}, source, pos, resume or size)
    state["next"] = resume or size


def _resumed(at: int | None) -> str:
    return f"reading resumed at offset {at}" if at is not None else "no readable record after it"


def _located(out: dict, source: str, start: int, end: int | None) -> dict:
    out.update(source_file=source, source_offset=start, source_end=end)
    return out


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

_ARC_START = re.compile(rb"(?<=\n)\S+ \S+ \d{14} \S+ \d+\r?\n")     # a header line, after a newline


def _read_arc_record(src: _Bytes, state: dict, opts: ReadOptions) -> dict:
    """The ARC v1 record at the start of `src`: a line `URL IP archive-date content-type length`, then
    `length` bytes (the HTTP response), then a newline."""
    line = src.readline(8192)
    if not line.endswith(b"\n"):
        if src.at_end():
            raise _SourceEnded("the ARC header line")
        raise _Unreadable("CorruptBytes", f"ARC header line longer than 8192 bytes: {line[:60]!r}")
    fields = line.split()
    if len(fields) < 5 or not fields[-1].isdigit() or len(fields[-1]) > 18:
        raise _Unreadable("CorruptBytes", f"not an ARC record header: {line[:120]!r}")
    url = fields[0].decode("utf-8", "replace")
    length = int(fields[-1])
    if length > MAX_RECORD_BYTES:
        raise _Unreadable("OversizedRecord", f"ARC record length {length} is over {MAX_RECORD_BYTES} bytes")
    block = _Block(src, length, None)
    date = fields[2].decode("ascii", "replace")
    if url.startswith("filedesc://"):
        out = {"kind": "other", "record_id": None, "message": "ARC file header"}
    elif not url.lower().startswith(("http://", "https://")):
        out = {"kind": "skipped", "record_id": None, "message": f"not an HTTP response: {url[:200]}"}
    else:
        # ARC has no record ids: one from the URL, date and the record's offset (its member's, if gzipped)
        record_id = "urn:lakesift:arc:" + hashlib.sha1(f"{url} {date} {state['at']}".encode()).hexdigest()
        block.record_id = record_id
        out = _http_response(block, opts, record_id=record_id, crawl=state["crawl"], fmt="ARC/1", target_uri=url,
                             warc_date=_arc_date(date), crawler_truncated=False)
    block.drain()
    after = src.peek(1)
    if after not in (b"", b"\n", b"\r"):
        raise _Unreadable("ContentLengthMismatch", f"ARC length {length} ends the record early: {after!r} follows it",
                          out.get("record_id"))
    return out


def _arc_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Format:
    read: object          # (src, state, opts) -> outcome row; raises _Unreadable / _SourceEnded
    start: re.Pattern     # where a record may start, to resume after an unreadable one


_WARC = _Format(_read_record, _RECORD_START)
_ARC = _Format(_read_arc_record, _ARC_START)


def parse_http_head(block: bytes) -> tuple[int, dict[str, str], int] | None:
    """Status code, headers (names title-cased; a repeated one: the last wins) and body offset of an HTTP
    response."""
    crlf, lf = block.find(b"\r\n\r\n"), block.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return None
    end, sep = (crlf, 4) if crlf >= 0 and (lf < 0 or crlf < lf) else (lf, 2)
    lines = block[:end].decode("iso-8859-1").splitlines()
    m = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", lines[0].strip()) if lines else None
    if not m:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, colon, v = line.partition(":")
        if colon:
            name = k.strip().title()
            headers[name] = _repeated_content_type(headers[name], v.strip()) if name in headers and \
                name == "Content-Type" else v.strip()
    return int(m.group(1)), headers, end + sep


def _repeated_content_type(earlier: str, later: str) -> str:
    """A second Content-Type header wins, but keeps the earlier charset when it names the same type and
    none of its own (WHATWG Fetch, "extract a MIME type")."""
    (mime_a, charset), (mime_b, charset_b) = parse_content_type(earlier), parse_content_type(later)
    if charset and not charset_b and mime_a == mime_b:
        return f"{later}; charset={charset}"
    return later


# ------------------------------------------------------------------------------------------- entry point

class HashingStream:
    """A seekable binary stream that hashes the file's bytes (sha256) in file order as the reader goes, whatever
    its seeks: bytes read again are not hashed again, bytes skipped are read for the hash when the reader
    passes them, and `digest()` hashes what the reader never reached. One pass over the file, not two."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._h, self._upto, self._pos = raw, hashlib.sha256(), 0, 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if self._pos > self._upto:
            self._hash_to(self._pos)
        data = self._raw.read(n)
        if self._pos <= self._upto < self._pos + len(data):
            self._h.update(memoryview(data)[self._upto - self._pos:])
            self._upto = self._pos + len(data)
        self._pos += len(data)
        return data

    def _hash_to(self, end: int | None) -> None:
        self._raw.seek(self._upto)
        while end is None or self._upto < end:
            chunk = self._raw.read(_READ_CHUNK if end is None else min(_READ_CHUNK, end - self._upto))
            if not chunk:
                break
            self._h.update(chunk)
            self._upto += len(chunk)
        self._raw.seek(self._pos)

    def digest(self) -> tuple[int, str]:
        """(size, 'sha256:<hex>') of the whole file."""
        self._hash_to(None)
        return self._upto, "sha256:" + self._h.hexdigest()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "HashingStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_archive(path: str, opts: ReadOptions) -> Iterator[dict]:
    """Every HTTP response of one WARC/ARC file as a row dict (kind='response'), every problem as
    kind='error', every non-HTTP response record (dns:, …) as kind='skipped', every other record
    (warcinfo, request, metadata, …) as kind='other'.

    Never raises for bad input: a missing file, an unknown format or corrupt bytes become error rows. The
    last row (kind='digest') gives the file's size and sha256, when it could be read to its end.
    """
    try:
        stream = HashingStream(open_stream(path))
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
            if head.startswith(b"WARC/"):
                yield from _iter_archive(stream, path, opts, gzipped, _WARC)
            elif head.startswith(b"filedesc://"):
                yield from _iter_archive(stream, path, opts, gzipped, _ARC)
            elif not head:
                yield _error(path, 0, "UnrecognisedFormat", "empty file or unreadable gzip header")
            else:
                yield _error(path, 0, "UnrecognisedFormat", f"neither WARC nor ARC: starts with {head[:40]!r}")
            size, digest = stream.digest()
        except OSError as exc:      # the storage failed mid-file (a network error, a disk error)
            yield _error(path, stream.tell(), "ReadError", f"{type(exc).__name__}: {exc}")
            return
        yield {"kind": "digest", "source_file": path, "size_bytes": size, "file_digest": digest}

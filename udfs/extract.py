"""HTML payload -> (title, main text): the kernel under `lakesift extract`.

Charset: the HTTP header's, then the page's <meta> declaration, then detection (uchardet via
resiliparse); a declared charset that does not decode the bytes is not trusted.
Extractors:
- `lakesift` (default): blocks of the page rendered by resiliparse, each kept or dropped by a small learned
  tree model (udfs/blocks.py; trained by bench/train_extractor.py, figures in bench/results/
  extraction_quality.json).
- `resiliparse`: resiliparse's main-content extraction with comments, alt texts, link targets,
  <noscript> and form fields off, then a fringe trim: leading lines of at most 4 words (menus, dates,
  "Print") and everything after the last substantial sentence (>= 8 words ending in punctuation:
  related links, share bars, footers). Measured on the 990-page trafilatura benchmark (bench/
  extraction_quality.py): F1 0.862 -> 0.882 from the trim, at the same speed.
- `trafilatura`: trafilatura.extract, comments excluded (slower, F1 0.924 on the same pages).
"""
from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass
from importlib.metadata import version

from udfs.warc import MAX_PAYLOAD_BYTES

EXTRACTORS = ("lakesift", "resiliparse", "trafilatura")
DEFAULT_EXTRACTOR = "lakesift"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_TERMINAL = re.compile(r"""[.!?…:;"»«“”)\]]\s*$""")
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 32))
HEAD_MAX_WORDS = 4         # leading lines this short are navigation/dates/bylines
TAIL_MIN_WORDS = 8         # the last line this long and ending in punctuation closes the main text


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str
    charset: str | None
    error: str | None = None
    truncated: bool = False          # the decoded body passed max_body_bytes and was cut there


def extractor_version(name: str) -> str:
    if name == "lakesift":
        from udfs.blocks import load_model

        return f"lakesift-{load_model().version}+resiliparse-{version('resiliparse')}"
    if name == "resiliparse":
        return f"resiliparse-{version('resiliparse')}+trim1"
    if name == "trafilatura":
        return f"trafilatura-{version('trafilatura')}"
    raise ValueError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")


# ------------------------------------------------------------------------------------------ bytes

def http_body(payload: bytes, transfer_encoding: str | None, content_encoding: str | None,
              max_bytes: int = MAX_PAYLOAD_BYTES) -> tuple[bytes, bool]:
    """Undo chunked transfer coding and gzip/deflate/br content coding, when the stored body has them; returns
    the body and whether it was cut at `max_bytes`. Decompression never produces more than `max_bytes` (a
    6 KB gzip bomb would otherwise inflate to gigabytes); a body stored without content coding is returned
    as it is (ingest's max_payload_bytes bounds it). Crawlers (Common Crawl among them) usually store
    decoded bodies; a failed decode keeps the stored bytes."""
    body = payload
    if transfer_encoding and "chunked" in transfer_encoding:
        body = _dechunk(body)
    enc = (content_encoding or "").strip().lower()
    try:
        if enc in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
            return _inflate(body, 31, max_bytes)
        if enc == "deflate":
            try:
                return _inflate(body, 15, max_bytes)
            except zlib.error:
                return _inflate(body, -15, max_bytes)
        if enc == "br":
            import brotli

            d = brotli.Decompressor()
            out = d.process(body, output_buffer_limit=max_bytes)
            return out[:max_bytes], len(out) >= max_bytes and not d.is_finished()
    except Exception:
        return payload, False
    return body, False                 # stored as it is: ingest's max_payload_bytes already bounds it


def _inflate(data: bytes, wbits: int, max_bytes: int) -> tuple[bytes, bool]:
    """zlib/gzip/raw deflate, at most max_bytes out; cut when more would have followed."""
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, max_bytes)
    return out, bool(d.unconsumed_tail) or (len(out) >= max_bytes and not d.eof)


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    try:
        while pos < len(data):
            eol = data.index(b"\r\n", pos)
            size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out.append(data[eol + 2: eol + 2 + size])
            pos = eol + 2 + size + 2
    except ValueError:
        return data       # not actually chunked
    return b"".join(out)


def looks_binary(body: bytes) -> bool:
    """NUL bytes or many control characters in the first 4 KiB: an image or archive labelled text/html."""
    head = body[:4096]
    if not head:
        return False
    if b"\x00" in head:
        return True
    return len(head) - len(head.translate(None, _CONTROL)) > 0.1 * len(head)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("'\"")).name
    except LookupError:
        return None


_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _wide_plausible(codec: str, body: bytes) -> bool:
    """A declared UTF-16/UTF-32 is believed only where the bytes look like it: a byte-order mark, or the NUL
    bytes such text of mostly ASCII markup has (every second, or three of four, byte). Almost any byte
    string of even length decodes as UTF-16, so decoding without an error proves nothing: a UTF-8 page
    declared UTF-16 would become CJK-looking garbage."""
    if not codec.startswith(("utf-16", "utf-32")):
        return True
    if body.startswith(_WIDE_BOMS):
        return True
    head = body[:4096]
    return head.count(0) >= len(head) // (4 if codec.startswith("utf-16") else 2)


def decode_html(body: bytes, declared_charset: str | None) -> tuple[str, str]:
    """(text, codec used). Declared charset, then <meta>, then detection; invalid bytes become U+FFFD. A
    declared wide encoding that the bytes contradict is passed over (_wide_plausible)."""
    for candidate in (_codec(declared_charset), _meta_codec(body)):
        if candidate and _wide_plausible(candidate, body):
            try:
                return body.decode(candidate), candidate
            except (UnicodeDecodeError, LookupError):
                continue
    from resiliparse.parse.encoding import detect_encoding

    detected = _codec(detect_encoding(body)) or "utf-8"
    return body.decode(detected, errors="replace"), detected


def _meta_codec(body: bytes) -> str | None:
    m = _META_CHARSET.search(body[:8192])
    return _codec(m.group(1).decode("ascii", "ignore")) if m else None


# ----------------------------------------------------------------------------------------- text

def trim_fringe(text: str) -> str:
    """Drop short leading lines and everything after the last substantial sentence."""
    lines = text.split("\n")
    last = -1
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].strip()
        if len(line.split()) >= TAIL_MIN_WORDS and _TERMINAL.search(line):
            last = i
            break
    if last < 0:
        return text
    start = 0
    while start < last and len(lines[start].split()) <= HEAD_MAX_WORDS:
        start += 1
    return "\n".join(lines[start:last + 1])


def _parsed(html: str):
    """resiliparse's tree of the page and its <title> (None when absent or blank)."""
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    return tree, (tree.title.strip() if tree.title else None) or None


def _resiliparse(html: str) -> tuple[str | None, str]:
    from resiliparse.extract.html2text import extract_plain_text

    tree, title = _parsed(html)
    text = extract_plain_text(
        tree, main_content=True, comments=False, alt_texts=False, links=False,
        noscript=False, form_fields=False,
    )
    return title, trim_fringe(text)


def _lakesift(html: str) -> tuple[str | None, str]:
    from udfs.blocks import main_text

    tree, title = _parsed(html)
    return title, main_text(tree, title)


def _trafilatura(html: str) -> tuple[str | None, str]:
    import trafilatura

    text = trafilatura.extract(html, include_comments=False) or ""
    m = _TITLE.search(html[:65536])
    title = re.sub(r"\s+", " ", m.group(1)).strip() if m else None
    return title or None, text


_EXTRACT = {"lakesift": _lakesift, "resiliparse": _resiliparse, "trafilatura": _trafilatura}


def extract_html(payload: bytes, declared_charset: str | None = None, content_encoding: str | None = None,
                 transfer_encoding: str | None = None, extractor: str = DEFAULT_EXTRACTOR) -> Extracted:
    """One HTML payload -> title, main text and the charset used. Never raises: problems go in .error."""
    body, cut = http_body(payload or b"", transfer_encoding, content_encoding)
    if not body or body.isspace():     # no stripped copy of the whole page
        return Extracted(None, "", None, "empty payload", cut)
    if looks_binary(body):
        return Extracted(None, "", None, "binary payload", cut)
    try:
        html, charset = decode_html(body, declared_charset)
    except Exception as exc:
        return Extracted(None, "", None, f"decode: {type(exc).__name__}: {exc}"[:500], cut)
    try:
        title, text = _EXTRACT[extractor](html)
    except Exception as exc:
        return Extracted(None, "", charset, f"extract: {type(exc).__name__}: {exc}"[:500], cut)
    return Extracted(title[:1000] if title else None, text.strip(), charset, None, cut)


def documents_from_records(records, extractor: str, extractor_label: str, langid_max_chars: int) -> dict[str, list]:
    """A batch of bronze HTML records (pyarrow RecordBatch) -> silver.documents columns.

    Extraction is per page (there is no batch HTML parser; udfs.blocks.features takes many pages, but page by
    page measured faster, a page's arrays staying in cache); language ID runs once over the whole batch.
    """
    from urllib.parse import urlsplit

    from udfs.lang import detect_languages
    from udfs.text import word_counts

    cols = records.to_pydict()
    results = [
        extract_html(payload, charset, c_enc, t_enc, extractor)
        for payload, charset, c_enc, t_enc in zip(
            cols["payload"], cols["declared_charset"], cols["content_encoding"], cols["transfer_encoding"])
    ]
    texts = [r.text for r in results]
    langs, scores = detect_languages(texts, langid_max_chars)
    hosts = []
    for url in cols["target_uri"]:
        try:
            hosts.append((urlsplit(url or "").hostname or "").lower() or None)
        except ValueError:
            hosts.append(None)
    return {
        "doc_id": cols["record_id"],
        "crawl": cols["crawl"],
        "url": cols["target_uri"],
        "host": hosts,
        "warc_date": cols["warc_date"],
        "title": [r.title for r in results],
        "text": texts,
        "language": langs,
        "language_score": [None if s != s else float(s) for s in scores],
        "char_count": [len(t) for t in texts],
        "word_count": word_counts(texts).tolist(),
        "charset": [r.charset for r in results],
        "extractor": [extractor_label] * len(texts),
        "extract_error": [r.error for r in results],
        "body_truncated": [r.truncated for r in results],
        "source_file": cols["source_file"],
        "source_offset": cols["source_offset"],
    }

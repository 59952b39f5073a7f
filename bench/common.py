"""Helpers the benchmarks share: the real data, wrapping real pages into WARC records, reporting."""
from __future__ import annotations

import gzip
import json
import os
import platform
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAFILATURA_EVAL = SHARED / "html" / "trafilatura-eval"
RESULTS = ROOT / "bench" / "results"


def need_shared() -> Path:
    if not SHARED.is_dir():
        sys.exit(f"this benchmark needs the real data in {SHARED}")
    return SHARED


def eval_pages() -> list[tuple[str, dict, bytes]]:
    """(url, {'with': [...], 'without': [...]}, raw HTML bytes) for the 990 trafilatura evaluation pages."""
    need_shared()
    data = json.loads((TRAFILATURA_EVAL / "evaldata.json").read_text())
    return [(url, item, gzip.decompress((TRAFILATURA_EVAL / "html" / (item["file"] + ".gz")).read_bytes()))
            for url, item in data.items()]


CLEANEVAL_SETS = ("cleaneval-dev", "cleaneval-final", "CleanPortalEval-master", "page-signal-master", "readability")


def cleaneval_pages(name: str) -> list[tuple[str, bytes, str]]:
    """(id, raw HTML bytes, gold main text) for one of the five gold-text page sets (../shared/data/POOL.md):
    the original bytes where they were not UTF-8 (html_b64), else the stored text."""
    import base64

    need_shared()
    out = []
    with gzip.open(SHARED / "html" / "cleaneval" / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            raw = base64.b64decode(rec["html_b64"]) if "html_b64" in rec else rec["html"].encode("utf-8")
            out.append((rec["id"], raw, rec["gold"]))
    return out


def write_pages_as_warc(path: Path, pages: list[tuple[str, bytes]], crawl: str = "BENCH-REAL", first_id: int = 1) -> dict:
    """Wrap real HTML into gzip-per-record WARC response records. The WARC and HTTP headers are made
    up (ids, dates, Content-Type without charset, so charset detection runs); the HTML bytes are real."""
    from jobs.demo.sample_crawl import warc_record

    date = datetime(2026, 1, 1, tzinfo=timezone.utc)
    n = 0
    with open(path, "wb") as fh:
        info = f"isPartOf: {crawl}\r\ndescription: real pages from the trafilatura benchmark, made-up WARC headers\r\n"
        fh.write(gzip.compress(warc_record("warcinfo", f"urn:uuid:{uuid.UUID(int=0)}", date, info.encode(),
                                           content_type="application/warc-fields"), mtime=0))
        for i, (url, html) in enumerate(pages):
            http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(html) + html
            rid = f"urn:uuid:{uuid.UUID(int=first_id + i)}"
            fh.write(gzip.compress(warc_record("response", rid, date, http, url), compresslevel=6, mtime=0))
            n += 1
    return {"records": n, "bytes": path.stat().st_size}


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d")}


def report(name: str, columns: list[str], rows: list[list], extra: dict) -> Path:
    """Print an aligned table and write bench/results/<name>.json."""
    from jobs import console as output

    output.table(columns, rows, width=48)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), "columns": columns, "rows": rows, **extra}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path

"""Console rendering for people (aligned tables) and for programs (CSV, JSON lines): the CLI's, and the
reports stages hand it."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import sys
from typing import Iterable, Sequence, TextIO


def plain(value):
    """A JSON-friendly value: timestamps as ISO 8601, bytes as base64, structs/maps/arrays recursively."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "asDict"):
        return {k: plain(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def cell(value, width: int = 60) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list, tuple)) or hasattr(value, "asDict"):
        text = json.dumps(plain(value), ensure_ascii=False)
    else:
        text = str(plain(value))
    text = text.replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: Sequence[str], rows: Iterable[Sequence], out: TextIO | None = None, width: int = 60) -> None:
    out = out or sys.stdout            # looked up per call: sys.stdout may be replaced after import
    cells = [[cell(v, width) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in cells) and bool(cells) for i in range(len(columns))]

    def line(values):
        return " | ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out.write(line(columns) + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write(line(r) + "\n")


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return text == "NULL"


def csv_rows(columns: Sequence[str], rows: Iterable[Sequence], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else (json.dumps(plain(v)) if isinstance(plain(v), (dict, list)) else plain(v))
                         for v in row])


def json_lines(columns: Sequence[str], rows: Iterable[Sequence], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for row in rows:
        out.write(json.dumps({c: plain(v) for c, v in zip(columns, row)}, ensure_ascii=False) + "\n")


def render_table(columns: Sequence[str], rows: Iterable[Sequence], width: int = 60) -> str:
    import io

    out = io.StringIO()
    table(columns, rows, out, width)
    return out.getvalue()

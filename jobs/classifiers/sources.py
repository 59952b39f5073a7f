"""Where classifier training text comes from: files, archives, JSONL, or a lakehouse table.

A source is a path or a table name:
  *.txt (and any other text file)   one document per blank-line-separated block, or per file (unit="file")
  *.zip                              every text member of the archive, read the same way
  *.jsonl, *.jsonl.gz                the `text` field of each line
  a directory                        every file above inside it
  bronze.x / silver.x / gold.x       the `text` column of that table (a seeded sample when limited)
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import random
import re
import zipfile
from dataclasses import dataclass
from typing import Iterator

from udfs.hashing import file_sha256

_BLOCKS = re.compile(r"\n\s*\n")
_TABLE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.){1,2}[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SourceInfo:
    name: str           # as given
    kind: str           # files | table
    detail: str         # the files read (with their sha256) or the table version


def is_table(source: str) -> bool:
    return bool(_TABLE.match(source)) and not os.path.exists(source)


def _text_documents(text: str, unit: str, min_words: int) -> Iterator[str]:
    pieces = [text] if unit == "file" else _BLOCKS.split(text)
    for piece in pieces:
        piece = piece.strip()
        if len(piece.split()) >= min_words:
            yield piece


def _jsonl_documents(lines: Iterator[str], min_words: int) -> Iterator[str]:
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            text = json.loads(line).get("text")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(text, str) and len(text.split()) >= min_words:
            yield text


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def expand(source: str) -> list[str]:
    if os.path.isdir(source):
        return sorted(p for p in glob.glob(os.path.join(source, "**", "*"), recursive=True) if os.path.isfile(p))
    if any(ch in source for ch in "*?["):
        return sorted(p for p in glob.glob(source, recursive=True) if os.path.isfile(p))
    if not os.path.isfile(source):
        raise FileNotFoundError(f"no such file, directory or table: {source}")
    return [source]


def file_documents(path: str, unit: str = "block", min_words: int = 10) -> Iterator[str]:
    lower = path.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith("/"):
                    continue
                raw = archive.read(member)
                if member.lower().endswith((".jsonl", ".json")):
                    yield from _jsonl_documents(iter(_decode(raw).splitlines()), min_words)
                else:
                    yield from _text_documents(_decode(raw), unit, min_words)
    elif lower.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
        opener = gzip.open if lower.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from _jsonl_documents(fh, min_words)
    else:
        with open(path, "rb") as fh:
            raw = fh.read()
        if lower.endswith(".gz"):
            raw = gzip.decompress(raw)
        yield from _text_documents(_decode(raw), unit, min_words)


def read_files(sources: list[str], unit: str, min_words: int, limit: int, seed: int) -> tuple[list[str], list[SourceInfo]]:
    """Documents of the file sources, a seeded sample of `limit` when there are more."""
    docs, infos = [], []
    for source in sources:
        files = expand(source)
        for path in files:
            docs.extend(file_documents(path, unit, min_words))
        infos.append(SourceInfo(source, "files", ", ".join(f"{os.path.basename(p)}@{file_sha256(p)[:16]}" for p in files)))
    if len(docs) > limit:
        docs = random.Random(seed).sample(docs, limit)
    return docs, infos


def read_table_texts(spark, cfg, table: str, limit: int, seed: int, min_words: int) -> tuple[list[str], SourceInfo]:
    """A seeded sample of up to `limit` texts of a table (collected to the driver: fastText trains there)."""
    from pyspark.sql import functions as F

    from jobs.runtime.tables import register_lakehouse

    if cfg.catalog is None:
        register_lakehouse(spark, cfg)
    name = table if cfg.catalog is None else f"{cfg.catalog}.{table}"
    version = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"]
    df = spark.sql(f"SELECT text FROM {name} VERSION AS OF {int(version)}")
    df = df.where(F.size(F.split(F.trim("text"), r"\s+")) >= min_words)
    total = df.count()
    if total > limit:
        df = df.withColumn("_k", F.xxhash64("text", F.lit(seed))).orderBy("_k").limit(limit)
    texts = [r.text for r in df.select("text").collect()]
    return texts, SourceInfo(table, "table", f"{table}@v{version}")

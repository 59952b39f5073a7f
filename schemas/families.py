"""The signal families a recipe can read: one entry per family, read by `select` (which rows of the family's
table a recipe sees) and by the recipe checker (aliases and options). A new signal is one entry here and
one producer stage; gold is untouched.

A family's table has one row per document and version of the signal (doc_id, crawl, ...). `options` are
the recipe's signals.<family>.<option> settings: each picks the rows whose column equals the option's value
(the default when the recipe gives none; no filter when there is neither); `required` options have no
default. `struct` names a struct column whose fields become the family's columns (heuristics).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from schemas import silver
from schemas.contract import TableContract
from udfs import heuristics
from udfs.minhash import MinHashParams
from udfs.paragraphs import ParagraphParams


@dataclass(frozen=True)
class Option:
    column: str
    default: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Family:
    name: str
    alias: str                                 # how predicates address its columns: alias.column
    contract: TableContract
    producer: str                              # the stage that writes it
    options: dict[str, Option] = field(default_factory=dict)
    struct: str | None = None


FAMILIES: tuple[Family, ...] = (
    Family("documents", "d", silver.DOCUMENTS, "extract"),
    Family("heuristics", "h", silver.SIGNALS_HEURISTIC, "extract", struct=heuristics.VERSION),
    Family("duplicates", "x", silver.DUPLICATES, "dedup",
           {"version": Option("version", MinHashParams().tag), "scope": Option("scope", "crawl")}),
    Family("paragraphs", "p", silver.PARAGRAPH_DUPLICATES, "dedup",
           {"version": Option("version", ParagraphParams().tag), "scope": Option("scope", "crawl")}),
    Family("quality", "q", silver.SIGNALS_QUALITY, "classify", {"model": Option("model", required=True)}),
    Family("contamination", "c", silver.SIGNALS_CONTAMINATION, "decontaminate", {"version": Option("version")}),
    Family("neural", "n", silver.SIGNALS_NEURAL, "score-neural",
           {"scorer": Option("scorer", required=True), "model": Option("model", required=True)}),
)
BY_NAME = {f.name: f for f in FAMILIES}
BY_ALIAS = {f.alias: f for f in FAMILIES}

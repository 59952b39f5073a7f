"""Recipes: ordered, named SQL predicates over the signal tables, and top-p% rules; checked before any data
is read. Recipes are YAML files (shipped ones in jobs/gold/recipes/, or any path):

    name: dclm_like
    description: ...
    source: where the rules come from (paper, section)
    signals:                                  # options of the signal families the predicates read
      duplicates: {version: minhash_5g_14x8, scope: crawl}
      quality: {model: lakesift_quality}
    predicates:                               # evaluated in order; the first failing one is the drop reason
      - name: english
        where: "d.language = 'en' AND d.language_score >= 0.65"
      - name: quality_top_10pct
        top_percent: 10                       # keep the best 10% of what is left, by:
        score: q.score
    clean: [repeated_paragraphs]              # optional: lines removed from the documents kept (CLEANERS)

Aliases: d = silver.documents, h = silver.signals_heuristic (heuristics_v2 fields as columns),
x = silver.duplicates, q = silver.signals_quality, c = silver.signals_contamination,
n = silver.signals_neural (one scorer and model per recipe: signals.neural.scorer and .model, e.g.
{scorer: embedding, model: lakesift_embedding}; learnability models are named LEARNER/REFERENCE).
A document without a row in a family a predicate reads is dropped as `missing_<family>` at that predicate;
a predicate that evaluates to NULL counts as failed. Neither is ever a silent keep.

Cleaning comes after every predicate, on the documents kept: each cleaner names whole lines of the text to
remove (positions in split(text, '\n')), so no line is ever cut in two. The corpus then holds the cleaned text
and its token estimate; gold.rejections records the tokens cut as a row with 0 documents, and a document
without the cleaner's signal is dropped as `missing_<family>` at that last step.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from schemas import families as signal_families
from schemas.contract import validate_identifier

# Read from the signal-family registry (schemas/families.py); nothing here names a family.
FAMILIES = {f.alias: f.name for f in signal_families.FAMILIES}          # alias -> family name
ALIASES = {f.name: f.alias for f in signal_families.FAMILIES}
FAMILY_OPTIONS = {f.name: set(f.options) for f in signal_families.FAMILIES if f.options}
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_COLUMN = re.compile(r"\b([a-z])\.([A-Za-z_][A-Za-z0-9_]*)\b")


# What a predicate may call: deterministic functions of the row's own signal values. Anything else (a
# subquery over other tables, java_method/reflect, UDFs, randomness, side effects such as raise_error) is
# refused before any data is read, naming the function. Operators (AND, =, +, IN, LIKE, CASE, CAST, IS NULL)
# are syntax, not functions, and always allowed.
ALLOWED_FUNCTIONS = frozenset("""
abs ceil ceiling floor round bround sqrt cbrt exp expm1 ln log log2 log10 log1p pow power sign signum mod pmod
greatest least coalesce nvl nvl2 ifnull nullif isnull isnotnull isnan nanvl if iff
length char_length character_length octet_length lower upper lcase ucase substr substring left right trim
ltrim rtrim startswith endswith contains instr locate position concat concat_ws replace regexp_like rlike
regexp_extract regexp_replace like ilike split size cardinality array_contains element_at array map_keys
map_values array_size double float int bigint smallint tinyint string boolean decimal try_cast
year month dayofmonth to_date datediff date_diff extract between
""".split())                  # BETWEEN and EXTRACT(... FROM ...) are syntax that Spark parses as functions


# Cleaners a recipe may list under `clean`: name -> (signal family, array<int> of line indexes it removes).
CLEANERS = {
    # DCLM's paragraph-level dedup (Li et al. 2024, Section 4.3): every paragraph repeated in
    # the scope survives once, in its first holder (jobs/silver/paragraph_dedup.py)
    "repeated_paragraphs": ("paragraphs", "p.repeated_lines"),
}


class RecipeError(ValueError):
    """A recipe that cannot run: the message names the recipe and the predicate."""


@dataclass(frozen=True)
class Predicate:
    name: str
    where: str | None = None
    top_percent: float | None = None
    score: str | None = None

    def sql(self) -> str:
        return self.where if self.where is not None else self.score

    def columns(self) -> list[tuple[str, str]]:
        """(alias, column) pairs the predicate reads, string literals ignored."""
        return sorted(set(_COLUMN.findall(_STRINGS.sub("''", self.sql()))))

    def families(self) -> list[str]:
        return sorted({FAMILIES[a] for a, _ in self.columns() if a in FAMILIES})


@dataclass(frozen=True)
class Recipe:
    name: str
    predicates: tuple[Predicate, ...]
    signals: dict = field(default_factory=dict)
    description: str = ""
    source: str = ""
    clean: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """sha256 prefix of the canonical content that decides the output (not the prose)."""
        content = {"name": self.name, "signals": self.signals, "predicates": [p.__dict__ for p in self.predicates]}
        if self.clean:                      # recipes without cleaning keep the fingerprints they always had
            content["clean"] = list(self.clean)
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def families(self) -> list[str]:
        return sorted(({f for p in self.predicates for f in p.families()} | self.clean_families()) - {"documents"})

    def clean_families(self) -> set[str]:
        return {CLEANERS[c][0] for c in self.clean}

    def lines_to_remove(self) -> str | None:
        """SQL: the line indexes the recipe's cleaners remove from a kept document (None without cleaners)."""
        if not self.clean:
            return None
        arrays = [f"coalesce({CLEANERS[c][1]}, array())" for c in self.clean]
        return arrays[0] if len(arrays) == 1 else f"array_distinct(concat({', '.join(arrays)}))"

    def columns(self) -> list[tuple[str, str]]:
        return sorted({c for p in self.predicates for c in p.columns()})


def shipped_recipes() -> list[str]:
    folder = resources.files("jobs.gold") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str, overrides: dict[str, str] | None = None) -> Recipe:
    """A shipped recipe by name, or a YAML file; overrides like {'quality.model': 'x'} set signal options."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file not found: {name_or_path}")
        text = path.read_text()
    else:
        source = resources.files("jobs.gold") / "recipes" / f"{name_or_path}.yaml"
        if not source.is_file():
            raise RecipeError(f"unknown recipe {name_or_path!r}; shipped: {', '.join(shipped_recipes())}, or give a YAML path")
        text = source.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {name_or_path}: not valid YAML: {exc}") from exc
    return parse(data, overrides or {}, origin=name_or_path)


def parse(data, overrides: dict[str, str], origin: str = "recipe") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{origin}: a recipe is a mapping with name, signals and predicates")
    name = data.get("name")
    try:
        validate_identifier(name, "recipe name")
    except ValueError as exc:
        raise RecipeError(f"{origin}: {exc}") from None
    signals = {k: dict(v or {}) for k, v in (data.get("signals") or {}).items()}
    for key, value in overrides.items():
        family, _, option = key.partition(".")
        signals.setdefault(family, {})[option] = value
    for family, options in signals.items():
        if family not in FAMILY_OPTIONS:
            raise RecipeError(f"recipe {name}: unknown signal family {family!r}; known: {', '.join(sorted(FAMILY_OPTIONS))}")
        unknown = set(options) - FAMILY_OPTIONS[family]
        if unknown:
            raise RecipeError(f"recipe {name}: unknown option(s) {sorted(unknown)} for {family}")
    raw = data.get("predicates")
    if not raw or not isinstance(raw, list):
        raise RecipeError(f"recipe {name}: needs a non-empty list of predicates")
    predicates, seen = [], set()
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or "name" not in item:
            raise RecipeError(f"recipe {name}: predicate #{i} has no name")
        pname = item["name"]
        try:
            validate_identifier(pname, "predicate name")
        except ValueError as exc:
            raise RecipeError(f"recipe {name}: predicate #{i}: {exc}") from None
        if pname in seen:
            raise RecipeError(f"recipe {name}: duplicate predicate name {pname!r}")
        if pname.startswith("missing_"):
            raise RecipeError(f"recipe {name}: predicate {pname}: names starting with missing_ are reserved")
        seen.add(pname)
        where, top, score = item.get("where"), item.get("top_percent"), item.get("score")
        if (where is None) == (top is None):
            raise RecipeError(f"recipe {name}: predicate {pname}: give either `where` or `top_percent` with `score`")
        if top is not None:
            if score is None or not isinstance(top, (int, float)) or not 0 < top <= 100:
                raise RecipeError(f"recipe {name}: predicate {pname}: top_percent must be in (0, 100] with a `score`")
        predicates.append(Predicate(pname, where=str(where) if where is not None else None,
                                    top_percent=float(top) if top is not None else None,
                                    score=str(score) if score is not None else None))
    for p in predicates:
        bad = [a for a, _ in p.columns() if a not in FAMILIES]
        if bad:
            raise RecipeError(f"recipe {name}: predicate {p.name}: unknown table alias {sorted(set(bad))}; "
                              f"use {', '.join(f'{a} ({f})' for a, f in FAMILIES.items())}")
    clean = data.get("clean") or []
    if isinstance(clean, str):
        clean = [clean]
    if not isinstance(clean, list) or any(c not in CLEANERS for c in clean) or len(set(clean)) != len(clean):
        raise RecipeError(f"recipe {name}: clean must be a list of distinct cleaners from: {', '.join(CLEANERS)}")
    return Recipe(name, tuple(predicates), signals, str(data.get("description", "")), str(data.get("source", "")),
                  tuple(clean))


# ----------------------------------------------------------------------------------------- SQL building

def steps(recipe: Recipe) -> list[tuple[int, str, str]]:
    """(step, drop reason, SQL condition that drops) in evaluation order; top-p% conditions use the
    placeholder {threshold:<name>} until their thresholds are known."""
    out, checked = [], set()
    for i, p in enumerate(recipe.predicates, 1):
        for family in p.families():
            if family != "documents" and family not in checked:
                out.append((i, f"missing_{family}", f"{ALIASES[family]}.doc_id IS NULL"))
                checked.add(family)
        if p.where is not None:
            out.append((i, p.name, f"NOT coalesce(({p.where}), false)"))
        else:
            out.append((i, p.name, f"NOT coalesce(({p.score}) >= {{threshold:{p.name}}}, false)"))
    for family in sorted(recipe.clean_families() - checked):
        out.append((len(recipe.predicates) + 1, f"missing_{family}", f"{ALIASES[family]}.doc_id IS NULL"))
    return out


def clean_step(recipe: Recipe) -> tuple[int, str] | None:
    """(step, name) of the cleaning step that follows every predicate, None without cleaners."""
    return (len(recipe.predicates) + 1, "clean_" + "_".join(recipe.clean)) if recipe.clean else None


def drop_reason_sql(recipe: Recipe, thresholds: dict[str, float | None], upto: int | None = None) -> tuple[str, str]:
    """(reason expression, step expression): the first failing step's name and position, NULL when kept.
    With `upto`, only steps before that position count (documents standing when it is evaluated)."""
    whens_reason, whens_step = [], []
    for step, reason, condition in steps(recipe):
        if upto is not None and step >= upto:
            break
        for name, value in thresholds.items():
            condition = condition.replace(f"{{threshold:{name}}}", "NULL" if value is None else repr(float(value)))
        whens_reason.append(f"WHEN {condition} THEN '{reason}'")
        whens_step.append(f"WHEN {condition} THEN {step}")
    if not whens_reason:
        return "CAST(NULL AS STRING)", "CAST(NULL AS INT)"
    return (f"CASE {' '.join(whens_reason)} END", f"CASE {' '.join(whens_step)} END")

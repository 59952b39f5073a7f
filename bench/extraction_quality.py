"""Extraction quality on every development page set, every extractor, in one run (one core, one process).

Sets and scoring (../shared/data/MANIFEST.md, POOL.md):
- `trafilatura-eval` (990 pages): its authors' snippet scoring. Whitespace normalised; each `with` snippet
  found in the output is a true positive, missing a false negative; each `without` snippet found is a false
  positive; precision, recall and F1 micro-averaged over all snippets. Published F1: trafilatura 2.2.0
  0.924 (fast 0.918), resiliparse 0.811.
- the five gold-text sets (`cleaneval-dev`, `cleaneval-final`, `CleanPortalEval-master`,
  `page-signal-master` (L3S-GN1), `readability`): word 4-gram shingles (lower-cased `\\w+` tokens; a text of
  fewer than 4 tokens is one shingle), precision and recall of the output's shingle set against the gold's,
  per page, then averaged over pages with the per-page F1 (the metric of Bevendorff et al.'s web content
  extraction benchmark, SIGIR 2023). An empty output on a page with gold text scores P=1, R=0, F1=0; empty
  output and empty gold score 1.
Pages/s counts one core's wall time for the extractor on that set (decode and parse included).

    python -m bench extraction_quality          # all sets, all extractors (~4 minutes)
"""
from __future__ import annotations

import re
import time

from bench.common import CLEANEVAL_SETS, cleaneval_pages, eval_pages, report
from udfs.extract import decode_html, extract_html

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")


def _resiliparse_plain(raw: bytes) -> str:
    """resiliparse's main-content extraction with its defaults: the published baseline configuration."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    html, _ = decode_html(raw, None)
    return extract_plain_text(HTMLTree.parse(html), main_content=True)


def _trafilatura(raw: bytes, fast: bool = False) -> str:
    import trafilatura

    return trafilatura.extract(raw, fast=fast) or ""


EXTRACTORS = {
    "lakesift default (blocks)": lambda raw: extract_html(raw, None).text,
    "lakesift --extractor resiliparse": lambda raw: extract_html(raw, None, extractor="resiliparse").text,
    "lakesift --extractor trafilatura": lambda raw: extract_html(raw, None, extractor="trafilatura").text,
    "resiliparse main_content, defaults": _resiliparse_plain,
    "trafilatura default": _trafilatura,
    "trafilatura fast mode": lambda raw: _trafilatura(raw, fast=True),
}
REFERENCE = "trafilatura default"
DEFAULT = "lakesift default (blocks)"


def snippet_scores(items: list[dict], outputs: list[str]) -> dict:
    tp = fn = fp = 0
    for item, text in zip(items, outputs):
        text = _WS.sub(" ", text or "")
        for snippet in item["with"]:
            if _WS.sub(" ", snippet).strip() in text:
                tp += 1
            else:
                fn += 1
        fp += sum(_WS.sub(" ", s).strip() in text for s in item["without"])
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    tokens = _TOKEN.findall((text or "").lower())
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return set(zip(*(tokens[i:] for i in range(n))))


def shingle_scores(golds: list[str], outputs: list[str]) -> dict:
    ps, rs, fs = [], [], []
    for gold, text in zip(golds, outputs):
        g, o = shingles(gold), shingles(text)
        if not g and not o:
            p = r = 1.0
        else:
            hit = len(g & o)
            p = hit / len(o) if o else 1.0
            r = hit / len(g) if g else 1.0
            if not g:
                p = 0.0
        ps.append(p)
        rs.append(r)
        fs.append(_f1(p, r) if g and o else float(not g and not o))
    n = max(len(golds), 1)
    return {"precision": sum(ps) / n, "recall": sum(rs) / n, "f1": sum(fs) / n}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def dev_sets() -> dict[str, tuple[list[bytes], object]]:
    """set name -> (raw pages, scorer(outputs) -> {precision, recall, f1})."""
    sets = {}
    traf = eval_pages()
    items = [item for _, item, _ in traf]
    sets["trafilatura-eval"] = ([raw for _, _, raw in traf], lambda outs, items=items: snippet_scores(items, outs))
    for name in CLEANEVAL_SETS:
        pages = cleaneval_pages(name)
        golds = [gold for _, _, gold in pages]
        sets[name] = ([raw for _, raw, _ in pages], lambda outs, golds=golds: shingle_scores(golds, outs))
    return sets


def main() -> None:
    sets = dev_sets()
    print(f"{len(sets)} development sets, {sum(len(p) for p, _ in sets.values())} pages; one core, one process")
    results: dict[str, dict[str, dict]] = {}
    for name, extract in EXTRACTORS.items():
        for set_name, (pages, scorer) in sets.items():
            started = time.perf_counter()
            outputs = [extract(raw) for raw in pages]
            seconds = time.perf_counter() - started
            results.setdefault(name, {})[set_name] = {**scorer(outputs), "seconds": seconds,
                                                       "pages_per_s": len(pages) / seconds}
        print(f"  {name}: {sum(r['seconds'] for r in results[name].values()):.1f} s", flush=True)
    rows = []
    for name, per_set in results.items():
        seconds = sum(r["seconds"] for r in per_set.values())
        ref_seconds = sum(r["seconds"] for r in results[REFERENCE].values())
        rows.append([name, *(round(per_set[s]["f1"], 3) for s in sets),
                     round(sum(r["f1"] for r in per_set.values()) / len(per_set), 3),
                     round(sum(len(p) for p, _ in sets.values()) / seconds, 1), round(ref_seconds / seconds, 1)])
    default, ref = results[DEFAULT], results[REFERENCE]
    report("extraction_quality", ["extractor (F1)", *sets, "mean", "pages/s", "x faster than trafilatura"], rows,
           {"pages": {s: len(p) for s, (p, _) in sets.items()},
            "detail": {name: {s: {k: round(v, 4) for k, v in r.items()} for s, r in per_set.items()}
                       for name, per_set in results.items()},
            "targets": {"default_f1_at_or_above_trafilatura_on_every_set":
                        {s: default[s]["f1"] >= ref[s]["f1"] for s in sets},
                        "default_5x_faster_than_trafilatura":
                        sum(r["seconds"] for r in ref.values()) / sum(r["seconds"] for r in default.values()) >= 5}})


if __name__ == "__main__":
    main()

"""Extraction quality on the 990 real pages of the trafilatura benchmark, every extractor in one run.

Scoring (as its authors do, ../shared/data/MANIFEST.md): whitespace normalised; each `with` snippet found
is a true positive, missing a false negative; each `without` snippet found is a false positive; precision,
recall and F1 micro-averaged over all snippets. Published F1 on these pages: trafilatura 2.2.0 0.924 (fast
0.918), resiliparse 1.0.9 0.811. Targets: our default >= 0.85 and >= 10x faster than trafilatura.
"""
from __future__ import annotations

import re
import time

from bench.common import eval_pages, report
from udfs.extract import decode_html, extract_html

_WS = re.compile(r"\s+")


def _resiliparse_plain(raw: bytes) -> str:
    """resiliparse's main-content extraction with its defaults: the published baseline configuration."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    html, _ = decode_html(raw, None)
    return extract_plain_text(HTMLTree.parse(html), main_content=True)


def _trafilatura_fast(raw: bytes) -> str:
    import trafilatura

    return trafilatura.extract(raw, include_comments=False, fast=True) or ""


EXTRACTORS = {
    "lakesift default (resiliparse+trim)": lambda raw: extract_html(raw, None, extractor="resiliparse").text,
    "lakesift --extractor trafilatura": lambda raw: extract_html(raw, None, extractor="trafilatura").text,
    "resiliparse main_content, defaults": _resiliparse_plain,
    "trafilatura fast mode": _trafilatura_fast,
}


def score(pages, extract) -> dict:
    tp = fn = fp = 0
    started = time.perf_counter()
    outputs = [extract(raw) for _, _, raw in pages]
    seconds = time.perf_counter() - started
    for (_, item, _), text in zip(pages, outputs):
        text = _WS.sub(" ", text or "")
        for snippet in item["with"]:
            if _WS.sub(" ", snippet).strip() in text:
                tp += 1
            else:
                fn += 1
        fp += sum(_WS.sub(" ", s).strip() in text for s in item["without"])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall),
            "seconds": seconds, "pages_per_s": len(pages) / seconds}


def main() -> None:
    pages = eval_pages()
    mb = sum(len(raw) for _, _, raw in pages) / 1e6
    print(f"{len(pages)} real pages, {mb:.0f} MB of HTML; one core, one process")
    results = {name: score(pages, fn) for name, fn in EXTRACTORS.items()}
    traf = results["lakesift --extractor trafilatura"]["seconds"]
    rows = [[name, round(r["precision"], 3), round(r["recall"], 3), round(r["f1"], 3), round(r["seconds"], 1),
             round(r["pages_per_s"], 1), round(traf / r["seconds"], 1)] for name, r in results.items()]
    default = results["lakesift default (resiliparse+trim)"]
    report("extraction_quality", ["extractor", "precision", "recall", "F1", "seconds", "pages/s", "x faster than trafilatura"],
           rows, {"pages": len(pages), "html_mb": mb,
                  "targets": {"default_f1>=0.85": default["f1"] >= 0.85,
                              "default_10x_faster_than_trafilatura": traf / default["seconds"] >= 10,
                              "trafilatura_option_f1~0.92": abs(results["lakesift --extractor trafilatura"]["f1"] - 0.92) < 0.01}})


if __name__ == "__main__":
    main()

"""Heuristic quality statistics of a document: signal family heuristics_v1. Values only, no thresholds.

Sources (the thresholds those papers used are noted for recipes; they are applied in gold, never here):
- Gopher quality + repetition: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights
  from Training Gopher", Appendix A.1.1 and Table A1 (words 50..100k, mean word length 3..10,
  symbol/word <= 0.1, bullet lines <= 0.9, ellipsis lines <= 0.3, alphabetic words >= 0.8, >= 2 stop
  words; duplicate line/paragraph fractions <= 0.3, their char fractions <= 0.2/0.3, top 2/3/4-gram char
  fractions <= 0.2/0.18/0.16, duplicate 5..10-gram char fractions <= 0.15..0.10).
- C4: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
  Transformer", Section 2.2 (lines ending in terminal punctuation, lines of >= 3 words, pages of >= 5
  sentences, no "lorem ipsum", no "{", no "javascript" lines, no policy/cookie lines).
- FineWeb: Penedo et al. 2024, "The FineWeb Datasets", Section 3.3 custom filters (fraction of lines
  ending in punctuation >= 0.12, fraction of characters in duplicated lines <= 0.1, fraction of lines
  shorter than 30 characters <= 0.67).
- RefinedWeb URL filtering: Penedo et al. 2023, "The RefinedWeb Dataset for Falcon LLM", Appendix G.1
  (domain blocklist + URL word scoring). We cannot ship its 4.6M-domain blocklist; we emit the URL's
  parts and a count of hits against a short list of our own, so a recipe can join any blocklist.
"""
from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

VERSION = "heuristics_v1"
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "‣", "◦", "-", "*", "·", "–", "—", "➢", "►", "✓")
ELLIPSES = ("...", "…")
C4_TERMINAL = (".", "!", "?", '"', "'", "”", "’")
FINEWEB_PUNCT = (".", "!", "?", '"', "'", "”", "’", "…", ":", ";", ")", "]")
C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# Substrings that mark spam/adult URLs; our own short list (RefinedWeb's lists are not redistributable).
URL_SPAM_WORDS = ("porn", "xxx", "sex", "nude", "escort", "casino", "viagra", "cialis", "hentai", "camgirl", "fuck")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_ALPHA = re.compile(r"[^\W\d_]")
_NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)   # odd 64-bit constant (golden ratio): spreads id polynomials
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")

FIELDS: tuple[tuple[str, str], ...] = (
    # (name, Spark SQL type)
    ("char_count", "int"), ("word_count", "int"), ("line_count", "int"), ("paragraph_count", "int"),
    ("mean_word_length", "double"), ("symbol_word_ratio", "double"), ("bullet_line_frac", "double"),
    ("ellipsis_line_frac", "double"), ("alpha_word_frac", "double"), ("stop_word_count", "int"),
    ("dup_line_frac", "double"), ("dup_para_frac", "double"), ("dup_line_char_frac", "double"),
    ("dup_para_char_frac", "double"),
    ("top_2gram_char_frac", "double"), ("top_3gram_char_frac", "double"), ("top_4gram_char_frac", "double"),
    ("dup_5gram_char_frac", "double"), ("dup_6gram_char_frac", "double"), ("dup_7gram_char_frac", "double"),
    ("dup_8gram_char_frac", "double"), ("dup_9gram_char_frac", "double"), ("dup_10gram_char_frac", "double"),
    ("c4_sentence_count", "int"), ("c4_terminal_line_frac", "double"), ("c4_short_line_frac", "double"),
    ("c4_javascript_lines", "int"), ("c4_policy_lines", "int"), ("c4_has_lorem_ipsum", "boolean"),
    ("c4_has_curly_bracket", "boolean"), ("c4_kept_word_frac", "double"),
    ("fw_line_punct_frac", "double"), ("fw_short_line_frac", "double"), ("fw_dup_line_char_frac", "double"),
    ("url_host", "string"), ("url_tld", "string"), ("url_length", "int"), ("url_is_ip", "boolean"),
    ("url_subdomain_depth", "int"), ("url_path_depth", "int"), ("url_has_query", "boolean"),
    ("url_spam_word_hits", "int"),
)


def _frac(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _duplicate_stats(items: list[str]) -> tuple[float, float]:
    """Gopher: fraction of items that repeat an earlier one, and the share of characters in them."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_count = dup_chars = 0
    for item in items:
        if item in seen:
            dup_count += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    total_chars = sum(len(i) for i in items)
    return dup_count / len(items), _frac(dup_chars, total_chars)


def _word_arrays(words: list[str]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Word ids (first-seen order), word lengths, alphabetic-word count, Gopher stop-word count.
    Per-word properties are computed once per distinct word and gathered with numpy."""
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.int64, count=len(words))
    distinct = list(vocab)
    lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))[ids]
    alpha = np.fromiter((_ALPHA.search(w) is not None for w in distinct), dtype=bool, count=len(distinct))
    stop = np.fromiter((w.lower() in GOPHER_STOP_WORDS for w in distinct), dtype=bool, count=len(distinct))
    return ids, lengths, int(alpha[ids].sum()), int(stop[ids].sum())


def _ngram_char_fracs(ids: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """Gopher's n-gram repetition: top 2/3/4-gram character share, duplicated 5..10-gram character share.

    An n-gram is identified by a 64-bit polynomial over its word ids (Horner's rule, wrapping arithmetic),
    extended one word at a time from n-1 to n; np.unique counts them.
    """
    out: dict[str, float] = {}
    n_words = len(ids)
    total = int(lengths.sum())
    grams = ids.astype(np.uint64)
    for n in range(2, 11):
        key = f"top_{n}gram_char_frac" if n <= 4 else f"dup_{n}gram_char_frac"
        if n_words < n or not total:
            out[key] = 0.0
            continue
        grams = grams[:-1] * _NGRAM_BASE + ids[n - 1:].astype(np.uint64)
        _, first, inverse, counts = np.unique(grams, return_index=True, return_inverse=True, return_counts=True)
        if n <= 4:
            best = counts.max()
            if best < 2:
                out[key] = 0.0
                continue
            start = int(first[counts == best].min())    # ties: the n-gram that occurs first in the text
            out[key] = float(lengths[start:start + n].sum() * best) / total
        else:
            starts = np.flatnonzero(counts[inverse] > 1)
            edges = np.zeros(n_words + 1, dtype=np.int64)
            np.add.at(edges, starts, 1)
            np.add.at(edges, starts + n, -1)
            covered = np.cumsum(edges[:-1]) > 0
            out[key] = float(lengths[covered].sum()) / total
    return out


def url_signals(url: str | None) -> dict:
    parts = urlsplit(url or "")
    host = (parts.hostname or "").lower()
    labels = [p for p in host.split(".") if p]
    is_ip = bool(_IPV4.match(host))
    lowered = (url or "").lower()
    return {
        "url_host": host or None,
        "url_tld": labels[-1] if labels and not is_ip else None,
        "url_length": len(url or ""),
        "url_is_ip": is_ip,
        "url_subdomain_depth": max(0, len(labels) - 2) if not is_ip else 0,
        "url_path_depth": len([p for p in parts.path.split("/") if p]),
        "url_has_query": bool(parts.query),
        "url_spam_word_hits": sum(lowered.count(w) for w in URL_SPAM_WORDS),
    }


def heuristics(text: str | None, url: str | None = None) -> dict:
    """All heuristics_v1 statistics of one document (text as extracted; url as crawled)."""
    text = text or ""
    words = text.split()
    n_words = len(words)
    raw_lines = text.split("\n")
    lines = [line.strip() for line in raw_lines if line.strip()]
    n_lines = len(lines)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    lowered = text.lower()

    dup_line_frac, dup_line_char_frac = _duplicate_stats(lines)
    dup_para_frac, dup_para_char_frac = _duplicate_stats(paragraphs)
    line_words = [len(line.split()) for line in lines]
    c4_terminal = [line.endswith(C4_TERMINAL) for line in lines]
    c4_js = ["javascript" in line.lower() for line in lines]
    c4_policy = [any(p in line.lower() for p in C4_POLICY) for line in lines]
    c4_kept_words = sum(
        w for w, term, js, pol in zip(line_words, c4_terminal, c4_js, c4_policy)
        if term and w >= 3 and not js and not pol
    )
    ids, word_lengths, alpha_words, stop_words = _word_arrays(words)
    symbols = text.count("#") + sum(text.count(e) for e in ELLIPSES)
    stats = {
        "char_count": len(text),
        "word_count": n_words,
        "line_count": n_lines,
        "paragraph_count": len(paragraphs),
        "mean_word_length": _frac(int(word_lengths.sum()), n_words),
        "symbol_word_ratio": _frac(symbols, n_words),
        "bullet_line_frac": _frac(sum(line.startswith(BULLETS) for line in lines), n_lines),
        "ellipsis_line_frac": _frac(sum(line.endswith(ELLIPSES) for line in lines), n_lines),
        "alpha_word_frac": _frac(alpha_words, n_words),
        "stop_word_count": stop_words,
        "dup_line_frac": dup_line_frac,
        "dup_para_frac": dup_para_frac,
        "dup_line_char_frac": dup_line_char_frac,
        "dup_para_char_frac": dup_para_char_frac,
        **_ngram_char_fracs(ids, word_lengths),
        "c4_sentence_count": len(_SENTENCE_END.findall(text)),
        "c4_terminal_line_frac": _frac(sum(c4_terminal), n_lines),
        "c4_short_line_frac": _frac(sum(w < 3 for w in line_words), n_lines),
        "c4_javascript_lines": sum(c4_js),
        "c4_policy_lines": sum(c4_policy),
        "c4_has_lorem_ipsum": "lorem ipsum" in lowered,
        "c4_has_curly_bracket": "{" in text,
        "c4_kept_word_frac": _frac(c4_kept_words, n_words),
        "fw_line_punct_frac": _frac(sum(line.endswith(FINEWEB_PUNCT) for line in lines), n_lines),
        "fw_short_line_frac": _frac(sum(len(line) < 30 for line in lines), n_lines),
        "fw_dup_line_char_frac": _fineweb_dup_line_chars(lines, len(text.replace("\n", ""))),
        **url_signals(url),
    }
    return stats


def _fineweb_dup_line_chars(lines: list[str], total_chars: int) -> float:
    """FineWeb: characters in lines that occur more than once (every copy after the first) / all chars."""
    counts = Counter(lines)
    dup = sum(len(line) * (c - 1) for line, c in counts.items() if c > 1)
    return _frac(dup, total_chars)


def heuristics_frame(texts, urls, max_chars: int = 1_000_000):
    """heuristics() over a batch: a pandas DataFrame with one column per field."""
    names = [n for n, _ in FIELDS]
    rows = [heuristics((t or "")[:max_chars], u) for t, u in zip(texts, urls)]
    return pd.DataFrame.from_records(rows, columns=names)


def heuristics_udf(max_chars: int = 1_000_000):
    """pandas UDF: (text, url) -> heuristics_v1 struct."""
    from pyspark.sql.functions import pandas_udf

    from schemas.silver import HEURISTICS_STRUCT

    @pandas_udf(HEURISTICS_STRUCT)
    def signals(texts: pd.Series, urls: pd.Series) -> pd.DataFrame:
        return heuristics_frame(texts, urls, max_chars)

    return signals

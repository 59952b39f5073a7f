"""A deliberately plain, per-document Python version of heuristics_v2: the oracle the vectorised
implementation in udfs/heuristics.py is tested against. Test-only; slow on purpose. It shares only the
definitions (token rules, character sets, word lists) with the kernel, never its code."""
from __future__ import annotations

import functools
import re
from collections import Counter

import regex

from udfs.heuristics import (BULLETS, C4_CITATION, C4_MAX_WORD, C4_POLICY, C4_TERMINAL, ELLIPSES, FW_SHORT_LINE,
                             GOPHER_STOP_WORDS, TOKEN_RULES, _SPECIAL, _URL, _URL_RULES, punctuation,
                             sentence_terminals, url_signals)


def _frac(a, b):
    return a / b if b else 0.0


def _apply(rules, part):
    for pattern, replacement in rules:
        part = regex.sub(pattern, replacement.replace("\\0", "\\g<0>"), part)
    return part


@functools.lru_cache(maxsize=None)
def _part_tokens(part: str) -> tuple[str, ...]:
    if regex.search(_URL, part):
        part = _apply(_URL_RULES, part)
    elif regex.search(_SPECIAL, part):
        part = _apply(TOKEN_RULES, part)
    return tuple(part.split())


def tokenize(line: str) -> list[str]:
    return [t for part in line.split() for t in _part_tokens(part)]


def sentences(tokens: list[str]) -> int:
    """The sentencizer, one token at a time."""
    terminals, count, seen_end = set(sentence_terminals()), 0, False
    for i, tok in enumerate(tokens):
        is_punct = tok in terminals or bool(regex.fullmatch(r"\pP+", tok))
        if i == 0:
            count = 1
        elif seen_end and not is_punct:
            count += 1
            seen_end = False
        if tok in terminals:
            seen_end = True
    return count


def _duplicates(items):
    seen, n, chars = set(), 0, 0
    for item in items:
        if item in seen:
            n += 1
            chars += len(item)
        else:
            seen.add(item)
    return n, chars


def _ngrams(tokens, total_chars):
    out = {}
    for n in (2, 3, 4):
        grams = [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        top = 0
        if grams:
            gram, count = Counter(grams).most_common(1)[0]
            top = len(gram) * count
        out[f"top_{n}gram_char_frac"] = _frac(top, total_chars)
    for n in range(5, 11):
        seen, repeated, i = set(), 0, 0
        while i < len(tokens) - n + 1:
            gram = "".join(tokens[i:i + n])
            if gram in seen:
                repeated += len(gram)
                i += n
            else:
                seen.add(gram)
                i += 1
        out[f"dup_{n}gram_char_frac"] = _frac(repeated, total_chars)
    return out


def _c4(lines):
    stats = dict(sentences=0, terminal=0, short=0, javascript=0, policy=0, lorem=False, curly=False, kept_words=0)
    for line in lines:
        line = line.strip()
        words = line.split()
        cleaned = re.sub(C4_CITATION, "", line)
        terminal = cleaned.endswith(C4_TERMINAL) and not cleaned.endswith("...")
        lowered = cleaned.lower()
        stats["terminal"] += terminal
        stats["short"] += len(words) < 3
        js = "javascript" in lowered
        pol = any(p in lowered for p in C4_POLICY)
        stats["javascript"] += js
        stats["policy"] += pol
        if any(len(w) > C4_MAX_WORD for w in words) or not terminal or len(words) < 3:
            continue
        stats["lorem"] |= "lorem ipsum" in lowered
        if js:
            continue
        stats["curly"] |= "{" in cleaned
        if pol:
            continue
        stats["sentences"] += sentences(tokenize(cleaned))
        stats["kept_words"] += len(words)
    return stats


def reference(text, url=None):
    text = text or ""
    punct = punctuation()
    split_lines = text.splitlines()
    tokens = [t for line in split_lines for t in tokenize(line)]
    words = [t for t in tokens if any(c not in punct for c in t)]
    rep_lines = re.split("\n+", text)
    paras = re.split(r"\n{2,}", text.strip())
    dl, dlc = _duplicates(rep_lines)
    dp, dpc = _duplicates(paras)
    fw_lines = [line for line in text.split("\n") if line.strip()]
    c4 = _c4(split_lines)
    stops = [t for t in tokens if t in GOPHER_STOP_WORDS]
    terminals = tuple(sentence_terminals())
    return {
        "char_count": len(text), "token_count": len(tokens), "word_count": len(words), "line_count": len(split_lines),
        "paragraph_count": len(paras),
        "mean_word_length": _frac(sum(map(len, words)), len(words)),
        "hash_word_ratio": _frac(text.count("#"), len(tokens)),
        "ellipsis_word_ratio": _frac(text.count("...") + text.count("…"), len(tokens)),
        "bullet_line_frac": _frac(sum(line.lstrip().startswith(BULLETS) for line in split_lines), len(split_lines)),
        "ellipsis_line_frac": _frac(sum(line.rstrip().endswith(ELLIPSES) for line in split_lines), len(split_lines)),
        "alpha_word_frac": _frac(sum(any(c.isalpha() for c in t) for t in tokens), len(tokens)),
        "stop_words_distinct": len(set(stops)), "stop_word_count": len(stops),
        "dup_line_frac": _frac(dl, len(rep_lines)), "dup_para_frac": _frac(dp, len(paras)),
        "dup_line_char_frac": _frac(dlc, len(text)), "dup_para_char_frac": _frac(dpc, len(text)),
        **_ngrams(tokens, len(text)),
        "c4_sentence_count": c4["sentences"],
        "c4_terminal_line_frac": _frac(c4["terminal"], len(split_lines)),
        "c4_short_line_frac": _frac(c4["short"], len(split_lines)),
        "c4_javascript_lines": c4["javascript"], "c4_policy_lines": c4["policy"],
        "c4_has_lorem_ipsum": c4["lorem"], "c4_has_curly_bracket": c4["curly"],
        "c4_kept_word_frac": _frac(c4["kept_words"], len(text.split())),
        "fw_line_punct_frac": _frac(sum(line.endswith(terminals) for line in fw_lines), len(fw_lines)),
        "fw_short_line_frac": _frac(sum(len(line) <= FW_SHORT_LINE for line in fw_lines), len(fw_lines)),
        "fw_dup_line_char_frac": _frac(_duplicates(fw_lines)[1], len(text.replace("\n", ""))),
        "fw_newline_word_ratio": _frac(text.count("\n"), len(tokens)),
        **url_signals(url),
    }

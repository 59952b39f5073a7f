"""A deliberately plain, per-document Python version of heuristics_v1: the oracle the vectorised
implementation in udfs/heuristics.py is tested against. Test-only; slow on purpose."""
from __future__ import annotations

import re
from collections import Counter

from udfs.heuristics import BULLETS, C4_POLICY, C4_TERMINAL, ELLIPSES, FINEWEB_PUNCT, GOPHER_STOP_WORDS, url_signals

_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def _frac(a, b):
    return a / b if b else 0.0


def _dups(items):
    seen, n, chars = set(), 0, 0
    for item in items:
        if item in seen:
            n += 1
            chars += len(item)
        seen.add(item)
    return _frac(n, len(items)), _frac(chars, sum(map(len, items)))


def _ngrams(words):
    out, lengths = {}, [len(w) for w in words]
    total = sum(lengths)
    for n in (2, 3, 4):
        key = f"top_{n}gram_char_frac"
        if len(words) < n or not total:
            out[key] = 0.0
            continue
        gram, count = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)[0]
        out[key] = _frac(sum(map(len, gram)) * count, total) if count > 1 else 0.0
    for n in range(5, 11):
        key = f"dup_{n}gram_char_frac"
        if len(words) < n or not total:
            out[key] = 0.0
            continue
        grams = list(zip(*(words[i:] for i in range(n))))
        counts, covered = Counter(grams), [False] * len(words)
        for i, g in enumerate(grams):
            if counts[g] > 1:
                covered[i:i + n] = [True] * n
        out[key] = _frac(sum(l for l, c in zip(lengths, covered) if c), total)
    return out


def reference(text, url=None):
    text = text or ""
    words = text.split()
    lines = [l.strip() for l in text.split("\n") if l.strip()]
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    lw = [len(l.split()) for l in lines]
    term = [l.endswith(C4_TERMINAL) for l in lines]
    js = ["javascript" in l.lower() for l in lines]
    pol = [any(p in l.lower() for p in C4_POLICY) for l in lines]
    dl, dlc = _dups(lines)
    dp, dpc = _dups(paras)
    counts = Counter(lines)
    return {
        "char_count": len(text), "word_count": len(words), "line_count": len(lines), "paragraph_count": len(paras),
        "mean_word_length": _frac(sum(map(len, words)), len(words)),
        "symbol_word_ratio": _frac(text.count("#") + sum(text.count(e) for e in ELLIPSES), len(words)),
        "bullet_line_frac": _frac(sum(l.startswith(BULLETS) for l in lines), len(lines)),
        "ellipsis_line_frac": _frac(sum(l.endswith(ELLIPSES) for l in lines), len(lines)),
        "alpha_word_frac": _frac(sum(any(c.isalpha() for c in w) for w in words), len(words)),
        "stop_word_count": sum(w.lower() in GOPHER_STOP_WORDS for w in words),
        "dup_line_frac": dl, "dup_para_frac": dp, "dup_line_char_frac": dlc, "dup_para_char_frac": dpc,
        **_ngrams(words),
        "c4_sentence_count": len(_SENTENCE_END.findall(text)),
        "c4_terminal_line_frac": _frac(sum(term), len(lines)),
        "c4_short_line_frac": _frac(sum(w < 3 for w in lw), len(lines)),
        "c4_javascript_lines": sum(js), "c4_policy_lines": sum(pol),
        "c4_has_lorem_ipsum": "lorem ipsum" in text.lower(), "c4_has_curly_bracket": "{" in text,
        "c4_kept_word_frac": _frac(sum(w for w, t, j, p in zip(lw, term, js, pol) if t and w >= 3 and not j and not p), len(words)),
        "fw_line_punct_frac": _frac(sum(l.endswith(FINEWEB_PUNCT) for l in lines), len(lines)),
        "fw_short_line_frac": _frac(sum(len(l) < 30 for l in lines), len(lines)),
        "fw_dup_line_char_frac": _frac(sum(len(l) * (c - 1) for l, c in counts.items() if c > 1), len(text.replace("\n", ""))),
        **url_signals(url),
    }

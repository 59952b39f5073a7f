"""Heuristic quality statistics of a document: signal family heuristics_v2. Values only, no thresholds.

Each statistic means what its paper says; where a paper is ambiguous we follow datatrove's reading (its
Gopher, C4 and FineWeb filters, huggingface/datatrove 0.10), and tests/test_heuristics_conformance.py
checks the decisions against datatrove's on real pages.
- Gopher quality + repetition: Rae et al. 2021, Appendix A.1.1 and Table A1 (words 50..100k, mean word
  length 3..10, '#' and ellipsis each <= 0.1 per word, bullet lines <= 0.9, ellipsis lines <= 0.3, alphabetic
  words >= 0.8, >= 2 distinct stop words (stop_word_count counts every occurrence, a quality feature); duplicate line/paragraph fractions <= 0.3, their character
  fractions <= 0.2, top 2/3/4-gram character fractions <= 0.2/0.18/0.16, duplicated 5..10-gram character
  fractions <= 0.15..0.10). Words are word-tokenizer tokens (Penn Treebank conventions, as NLTK's
  word_tokenize: punctuation split off as tokens of its own); "words" for the counts and mean length are
  the tokens holding a character outside PUNCTUATION; character fractions are of the whole text.
- C4: Raffel et al. 2020, Section 2.2, on the lines C4 keeps (ending in terminal punctuation, not in an
  ellipsis, >= 3 words, no word over 1000 characters, Wikipedia-style citations removed first, no
  "javascript", no policy/cookie phrase): their sentences, "lorem ipsum" and "{" in those lines.
- FineWeb: Penedo et al. 2024, Section 3.3 custom filters (lines ending in terminal punctuation >= 0.12,
  characters in duplicated lines <= 0.1, lines of <= 30 characters <= 0.67), on the non-blank lines as
  they are (not trimmed); plus datatrove's newline-per-word ratio.
- RefinedWeb URL filtering: Penedo et al. 2023, Appendix G.1 (domain blocklist + URL word scoring). We
  cannot ship its 4.6M-domain blocklist; we emit the URL's parts and a count of hits against a short list
  of our own, so a recipe can join any blocklist.
Sentences (C4) and sentence-final periods (the tokenizer) are found by a rule, not by a trained Punkt
model: a period ends a sentence after two characters that are neither spaces nor periods (so "e.g.",
"U.S." and initials do not). Rows of heuristics_v1 (the earlier definitions) stay readable in the table.
"""
from __future__ import annotations

import functools
import re
import sys
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from udfs import text as T
from udfs.hashing import concatenation_hasher

VERSION = "heuristics_v2"
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")     # exact, case-sensitive tokens
BULLETS = ("•", "-")                               # a line starting with either, after leading whitespace
ELLIPSES = ("...", "…")
C4_TERMINAL = (".", "?", "!", '"', "'")
C4_MAX_WORD = 1000
C4_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"
C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
FW_SHORT_LINE = 30
# Characters that make a token a symbol (Gopher's word counts skip tokens made of these only): ASCII
# punctuation, the typographic and full-width marks below, C0/C1 control characters other than tab and
# newline, and every Unicode Sentence_Terminal character (datatrove's set of punctuation).
_MARKS = "—”％１〈、━【「」，】；“《„’∶´．（–？！：～«〉》）。…►»"
URL_SPAM_WORDS = ("porn", "xxx", "sex", "nude", "escort", "casino", "viagra", "cialis", "hentai", "camgirl", "fuck")
_NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)   # odd 64-bit constant (golden ratio): spreads id polynomials
_DOC_SALT = np.uint64(0xD6E8FEB86659FD93)     # odd 64-bit multiplier: a different key space per text
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_LINE_BREAKS = "\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"      # what Python's str.splitlines() splits on

# Word tokenization as datatrove's English word tokenizer (spaCy's rule-based English tokenizer, no model)
# splits text: regular-expression rewrites that pad tokens with spaces, applied in order to whole batches
# (RE2), then a whitespace split. Punctuation at either end of a token becomes tokens of its own (one
# character each, "..." as one), as do hyphens, slashes, colons and commas between letters, dashes and
# ellipses anywhere, and clitics ('s, 'll, n't ...); a final period stays on abbreviations ("Mr.", "U.S.",
# single letters). Passes marked x3 repeat, because RE2 matches do not overlap.
_PREFIX = r"[\"'(\[{<«“‘„$£€#*_¡¿]"
_SUFFIX = r"[\"')\]}>»”’,;:!?*_#%€$]"
ABBREVIATIONS = (
    "Mr", "Mrs", "Ms", "Dr", "Prof", "Rev", "Gen", "Gov", "Sen", "Rep", "Jr", "St", "Inc", "Ltd", "Co", "Corp",
    "Bros", "vs", "Mt", "Messrs", "Adm", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
    "Nov", "Dec", "Ala", "Ariz", "Ark", "Calif", "Colo", "Conn", "Del", "Fla", "Ga", "Ill", "Ind", "Kan", "Ky",
    "La", "Md", "Mass", "Mich", "Minn", "Miss", "Mo", "Mont", "Neb", "Nev", "Okla", "Ore", "Pa", "Tenn", "Va",
    "Wash", "Wis", "Ph\\.D", "co", "vs", "v\\.s", "a\\.m", "p\\.m", "e\\.g", "i\\.e", "E\\.g", "I\\.e",
)
_SUFFIX_RULES = ((r"(\S)(" + _SUFFIX + r")(\s|$)", r"\1 \2\3"), (r"([^\s.])\.(\s|$)", r"\1 .\2")) * 3
TOKEN_RULES: tuple[tuple[str, str], ...] = (
    (r"\.\.+|…|—|–|--", r" \0 "),                                   # ellipses and dashes, anywhere
    *[(r"([\pL\pN])([-/:<>=])(\pL)", r"\1 \2 \3")] * 2,                 # between a letter or digit and a letter
    *[(r"(\pN)([-+*^])(\pN)", r"\1 \2 \3")] * 2,                        # between digits
    *[(r"(\pL),(\pL)", r"\1 , \2")] * 2,
    (r"(\p{Ll})\.(\p{Lu})", r"\1 . \2"),                              # a period between words
    *[(r"(^|\s)(" + _PREFIX + r")(\S)", r"\1\2 \3")] * 3,               # x3: punctuation opening a token
    *_SUFFIX_RULES,                                                     # x3: punctuation closing a token
    *[(r"(^|\s)((?:\pL\.)*\pL|" + "|".join(ABBREVIATIONS) + r") \.(\s|$)", r"\1\2.\3")] * 2,   # abbreviations
    (r"(?i)(\pL)('s|'m|'d|'ll|'ve|'re|’s|’m|’d|’ll|’ve|’re|n't|n’t)(\s|$)", r"\1 \2\3"),  # clitics
    (r"(?i)\b(can)(not)\b", r"\1 \2"),
    (r"(?i)\b(gon|got|wan)(na|ta)\b", r"\1 \2"),
    (r"(?i)\b(gim|lem)(me)\b", r"\1 \2"),
)

_SPECIAL = r"[^\pL\pN]|^(?i:cannot|gonna|gotta|wanna|gimme|lemme)$"      # parts TOKEN_RULES can change
_URL = r"(?i)^(?:[a-z][a-z0-9+.-]*://|www\.)\S"
_URL_RULES = _SUFFIX_RULES                 # a URL only loses the punctuation closing it

FIELDS: tuple[tuple[str, str], ...] = (
    # (name, Spark SQL type)
    ("char_count", "int"), ("token_count", "int"), ("word_count", "int"), ("line_count", "int"),
    ("paragraph_count", "int"), ("mean_word_length", "double"), ("hash_word_ratio", "double"),
    ("ellipsis_word_ratio", "double"), ("bullet_line_frac", "double"), ("ellipsis_line_frac", "double"),
    ("alpha_word_frac", "double"), ("stop_words_distinct", "int"), ("stop_word_count", "int"),
    ("dup_line_frac", "double"), ("dup_para_frac", "double"), ("dup_line_char_frac", "double"),
    ("dup_para_char_frac", "double"),
    ("top_2gram_char_frac", "double"), ("top_3gram_char_frac", "double"), ("top_4gram_char_frac", "double"),
    ("dup_5gram_char_frac", "double"), ("dup_6gram_char_frac", "double"), ("dup_7gram_char_frac", "double"),
    ("dup_8gram_char_frac", "double"), ("dup_9gram_char_frac", "double"), ("dup_10gram_char_frac", "double"),
    ("c4_sentence_count", "int"), ("c4_terminal_line_frac", "double"), ("c4_short_line_frac", "double"),
    ("c4_javascript_lines", "int"), ("c4_policy_lines", "int"), ("c4_has_lorem_ipsum", "boolean"),
    ("c4_has_curly_bracket", "boolean"), ("c4_kept_word_frac", "double"),
    ("fw_line_punct_frac", "double"), ("fw_short_line_frac", "double"), ("fw_dup_line_char_frac", "double"),
    ("fw_newline_word_ratio", "double"),
    ("url_host", "string"), ("url_tld", "string"), ("url_length", "int"), ("url_is_ip", "boolean"),
    ("url_subdomain_depth", "int"), ("url_path_depth", "int"), ("url_has_query", "boolean"),
    ("url_spam_word_hits", "int"),
)

# heuristics_v1's fields: only the table schema keeps them, so rows written before v2 stay readable.
V1_VERSION = "heuristics_v1"
_V1_NAMES = """char_count word_count line_count paragraph_count mean_word_length symbol_word_ratio bullet_line_frac
    ellipsis_line_frac alpha_word_frac stop_word_count dup_line_frac dup_para_frac dup_line_char_frac dup_para_char_frac
    top_2gram_char_frac top_3gram_char_frac top_4gram_char_frac dup_5gram_char_frac dup_6gram_char_frac
    dup_7gram_char_frac dup_8gram_char_frac dup_9gram_char_frac dup_10gram_char_frac c4_sentence_count
    c4_terminal_line_frac c4_short_line_frac c4_javascript_lines c4_policy_lines c4_has_lorem_ipsum
    c4_has_curly_bracket c4_kept_word_frac fw_line_punct_frac fw_short_line_frac fw_dup_line_char_frac url_host
    url_tld url_length url_is_ip url_subdomain_depth url_path_depth url_has_query url_spam_word_hits"""
V1_FIELDS: tuple[tuple[str, str], ...] = tuple((name, {**dict(FIELDS), "symbol_word_ratio": "double"}[name])
                                               for name in _V1_NAMES.split())


@functools.lru_cache(maxsize=1)
def sentence_terminals() -> str:
    """Every character with the Unicode property Sentence_Terminal (the `regex` module knows it)."""
    import regex

    pattern = regex.compile(r"\p{Sentence_Terminal}")
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if pattern.match(chr(c)))


@functools.lru_cache(maxsize=1)
def punctuation() -> frozenset[str]:
    ascii_punct = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum())
    controls = "".join(chr(c) for c in [*range(0, 9), *range(11, 32), *range(127, 160)])
    return frozenset(ascii_punct + _MARKS + controls + sentence_terminals())


def _char_class(chars) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars)) + "]"


@functools.lru_cache(maxsize=1)
def _patterns() -> dict[str, str]:
    ends = lambda strings: "(?:" + "|".join(re.escape(s) for s in strings) + ")$"     # noqa: E731
    return {
        "symbol_token": "^" + _char_class(punctuation()) + "+$",
        "fw_terminal": _char_class(sentence_terminals()) + "$",
        "terminal_token": "^" + _char_class(sentence_terminals()) + "$",
        "c4_terminal": ends(C4_TERMINAL),
        "ellipsis_end": ends(ELLIPSES),
        "policy": "|".join(re.escape(p) for p in C4_POLICY),
    }


def _div(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    part = np.asarray(part, dtype=np.float64)
    whole = np.asarray(whole, dtype=np.float64)
    return np.divide(part, whole, out=np.zeros_like(part), where=whole > 0)


def _flags(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False), dtype=bool) if len(array) else np.zeros(0, dtype=bool)


def _ints(array: pa.Array) -> np.ndarray:
    return np.asarray(array, dtype=np.int64) if len(array) else np.zeros(0, dtype=np.int64)


def _rewrite(values: pa.Array, rules, mask: np.ndarray) -> pa.Array:
    """`values` with `rules` applied to the masked ones only."""
    if not mask.any():
        return values
    subset = values.filter(pa.array(mask))
    for pattern, replacement in rules:
        subset = pc.replace_substring_regex(subset, pattern, replacement)
    return pc.replace_with_mask(values, pa.array(mask), subset)


def piece_tokens(pieces: pa.Array) -> T.Pieces:
    """Word-tokenizer tokens of every string of `pieces`: each whitespace-separated part rewritten by
    TOKEN_RULES (only parts holding something other than letters and digits can change), then split on
    the spaces the rules put in. URLs stay whole but for punctuation closing them."""
    parts = T.words(pieces)
    values = parts.values
    if not len(values):
        return parts
    special = _flags(pc.match_substring_regex(values, _SPECIAL))
    url = special & _flags(pc.match_substring_regex(values, _URL))
    values = _rewrite(values, TOKEN_RULES, special & ~url)
    values = _rewrite(values, _URL_RULES, url)
    split = T.words(values)
    per_part = np.concatenate(([0], np.cumsum(split.counts)))
    return T.Pieces(split.values, per_part[parts.offsets])


def tokens(texts) -> T.Pieces:
    """Word-tokenizer tokens of every text: the tokens of its lines (str.splitlines())."""
    arr = T.as_text_array(texts)
    lines = _pieces(arr, _LINE_BREAKS, drop_trailing_empty=True)
    line_tokens = piece_tokens(lines.values)
    return T.Pieces(line_tokens.values, line_tokens.offsets[lines.offsets])


def _pieces(arr: pa.Array, pattern: str, drop_trailing_empty: bool) -> T.Pieces:
    """Every piece between matches of `pattern`, empty ones kept (Python's re.split / str.splitlines)."""
    lists = pc.split_pattern_regex(arr, pattern)
    flat = lists.flatten()
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    if not drop_trailing_empty or not len(flat):
        return T.Pieces(flat, offsets)
    counts = np.diff(offsets)
    last = offsets[1:] - 1
    lengths = _ints(pc.utf8_length(flat))
    drop = np.zeros(len(flat), dtype=bool)
    has = counts > 0
    drop[last[has]] = lengths[last[has]] == 0          # a text ending in a line break: no empty last line
    keep = ~drop
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return T.Pieces(flat.filter(pa.array(keep)), kept_before[offsets])


def _repeats(pieces: T.Pieces, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per text: how many pieces repeat an earlier identical piece of the same text, and their characters."""
    if not len(pieces.values):
        zeros = np.zeros(len(pieces.offsets) - 1, dtype=np.int64)
        return zeros, zeros
    ids = _ints(pc.dictionary_encode(pieces.values).indices)
    key = pieces.doc_index().astype(np.int64) * (int(ids.max()) + 1) + ids
    codes, _ = pd.factorize(key)                      # codes in order of first appearance
    first = np.empty(codes.max() + 1, dtype=np.int64)
    positions = np.arange(len(codes))
    first[codes[::-1]] = positions[::-1]              # earliest position of each (text, piece)
    repeat = first[codes] != positions
    return pieces.per_doc_sum(repeat.astype(np.int64)), pieces.per_doc_sum(np.where(repeat, lengths, 0))


def _greedy_duplicates(positions: np.ndarray, codes: np.ndarray, n: int, gram_chars: np.ndarray) -> float:
    """Gopher's duplicated n-gram characters in one text, scanning left to right: an n-gram seen before
    counts its characters and the scan jumps past it, so overlapping repeats are not counted twice. Only
    the positions of n-grams that occur more than once in the text (`positions`, ascending) can matter."""
    seen: set[int] = set()
    resume, total = 0, 0
    for pos, code, chars in zip(positions.tolist(), codes.tolist(), gram_chars.tolist()):
        if pos < resume:
            continue                                 # skipped by an earlier duplicate
        if code in seen:
            total += chars
            resume = pos + n
        else:
            seen.add(code)
            resume = pos + 1
    return float(total)


def _ngram_chars(values: pa.Array, ids: np.ndarray, lengths: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per text (rows) the characters of: the most frequent 2/3/4-gram times its count (joined with
    spaces; ties go to the n-gram seen first; a text whose n-grams are all distinct gets its first one)
    and the duplicated 5..10-grams (greedy scan). Columns 0..8; 0 for texts with fewer than n tokens.

    A 2/3/4-gram is a 64-bit polynomial of its token ids, extended one token at a time over the whole
    batch and grouped within its text by hashing (pandas factorize); only n-grams whose (n-1)-token prefix
    repeats in the same text can repeat, so each n looks only at those positions. A 5..10-gram is, as in
    Gopher's implementations, its tokens joined without spaces (two token sequences with the same letters
    are the same n-gram): the stable hash of that concatenation, from one prefix sum over the tokens."""
    n_docs = len(offsets) - 1
    out = np.zeros((n_docs, 9), dtype=np.float64)
    n_tok = len(ids)
    if not n_tok:
        return out
    counts_per_doc = np.diff(offsets)
    doc = np.repeat(np.arange(n_docs), counts_per_doc)
    doc_end = offsets[1:][doc]
    cum = np.concatenate(([0], np.cumsum(lengths)))
    for n in (2, 3, 4):                                 # texts whose n-grams never repeat: their first n-gram
        has = counts_per_doc >= n
        start = offsets[:-1][has]
        out[has, n - 2] = cum[start + n] - cum[start] + (n - 1)
    salt = doc.astype(np.uint64) * _DOC_SALT
    cand = np.arange(n_tok)
    grams = ids.astype(np.uint64)
    for n in (2, 3, 4):
        fits = cand + n <= doc_end[cand]
        cand, grams = cand[fits], grams[fits]
        if not len(cand):
            break
        grams = grams * _NGRAM_BASE + ids[cand + n - 1].astype(np.uint64)
        codes, _ = pd.factorize(grams ^ salt[cand])
        count = np.bincount(codes)[codes]
        repeat = count > 1
        if not repeat.any():
            break
        d = doc[cand]
        best = np.zeros(n_docs, dtype=np.int64)
        np.maximum.at(best, d, count)
        hit = repeat & (count == best[d])
        hit_doc, hit_pos = d[hit], cand[hit]
        first = np.flatnonzero(np.concatenate(([True], hit_doc[1:] != hit_doc[:-1])))
        docs, pos = hit_doc[first], hit_pos[first]
        out[docs, n - 2] = (cum[pos + n] - cum[pos] + (n - 1)) * best[docs]
        cand, grams = cand[repeat], grams[repeat]
    everywhere = np.arange(n_tok)
    concatenation = concatenation_hasher(values)
    for n in range(5, 11):
        start = everywhere[everywhere + n <= doc_end]
        if not len(start):
            break
        codes, _ = pd.factorize(concatenation(start, start + n) ^ salt[start])
        repeat = np.bincount(codes)[codes] > 1
        if not repeat.any():
            continue
        rpos, rcodes, rdoc = start[repeat], codes[repeat], doc[start[repeat]]
        chars = cum[rpos + n] - cum[rpos]
        bounds = np.flatnonzero(np.concatenate(([True], rdoc[1:] != rdoc[:-1], [True])))
        for a, b in zip(bounds[:-1], bounds[1:]):
            out[rdoc[a], n - 2] = _greedy_duplicates(rpos[a:b], rcodes[a:b], n, chars[a:b])
    return out


def url_signals(url: str | None) -> dict:
    try:
        parts = urlsplit(url or "")
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = urlsplit(""), ""
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


def _sentences(toks: T.Pieces) -> np.ndarray:
    """Sentences per text, from its tokens, as a rule-based sentencizer finds them (spaCy's, which
    datatrove's English sentence splitting uses): a sentence ends at a token that is one sentence-terminal
    character, and the next begins at the first token after it that is not punctuation."""
    n = len(toks.offsets) - 1
    if not len(toks.values):
        return np.zeros(n, dtype=np.int64)
    encoded = pc.dictionary_encode(toks.values)
    ids = _ints(encoded.indices)
    terminal = _flags(pc.match_substring_regex(encoded.dictionary, _patterns()["terminal_token"]))[ids]
    punct = terminal | _flags(pc.match_substring_regex(encoded.dictionary, r"^\pP+$"))[ids]
    seen = np.concatenate(([0], np.cumsum(terminal)))         # terminal tokens before each position
    words = np.flatnonzero(~punct)
    line = toks.doc_index()[words]
    previous = np.concatenate(([-1], words[:-1]))
    first = np.concatenate(([True], line[1:] != line[:-1]))
    previous = np.where(first, toks.offsets[:-1][line] - 1, previous)
    boundary = seen[words] - seen[previous + 1] > 0
    starts = np.bincount(line[boundary], minlength=n)
    return np.where(toks.counts > 0, 1 + starts, 0)


def _c4(lines: T.Pieces, line_tokens: T.Pieces) -> dict[str, np.ndarray]:
    """C4's line rules on the trimmed lines of str.splitlines() (and their tokens): which lines it keeps,
    and the statistics."""
    p = _patterns()
    trimmed = pc.utf8_trim_whitespace(lines.values)
    words = pc.utf8_split_whitespace(trimmed)
    n_words = _ints(pc.list_value_length(words)) if len(trimmed) else np.zeros(0, dtype=np.int64)
    flat_words = words.flatten() if len(trimmed) else pa.array([], pa.large_string())
    long_word = np.zeros(len(trimmed), dtype=bool)
    if len(flat_words):
        too_long = _ints(pc.utf8_length(flat_words)) > C4_MAX_WORD
        if too_long.any():
            owner = np.repeat(np.arange(len(trimmed)), n_words)
            long_word[owner[too_long]] = True
    cleaned = pc.replace_substring_regex(trimmed, C4_CITATION, "")
    terminal = _flags(pc.match_substring_regex(cleaned, p["c4_terminal"])) & \
        ~_flags(pc.ends_with(cleaned, "..."))
    candidate = ~long_word & terminal & (n_words >= 3)
    lowered = pc.utf8_lower(cleaned)
    lorem = candidate & _flags(pc.match_substring(lowered, "lorem ipsum"))
    javascript = _flags(pc.match_substring(lowered, "javascript"))
    curly = candidate & ~javascript & _flags(pc.match_substring(cleaned, "{"))
    policy = _flags(pc.match_substring_regex(lowered, p["policy"]))
    kept = candidate & ~javascript & ~policy
    sentences = _sentences(line_tokens)
    cited = kept & _flags(pc.match_substring_regex(trimmed, C4_CITATION))     # tokens of the cleaned line
    if cited.any():
        sentences[cited] = _sentences(piece_tokens(cleaned.filter(pa.array(cited))))
    sentences = np.where(kept, sentences, 0)
    n_lines = lines.counts
    return {
        "c4_sentence_count": lines.per_doc_sum(sentences),
        "c4_terminal_line_frac": _div(lines.per_doc_sum(terminal), n_lines),
        "c4_short_line_frac": _div(lines.per_doc_sum(n_words < 3), n_lines),
        "c4_javascript_lines": lines.per_doc_sum(javascript),
        "c4_policy_lines": lines.per_doc_sum(policy),
        "c4_has_lorem_ipsum": lines.per_doc_sum(lorem) > 0,
        "c4_has_curly_bracket": lines.per_doc_sum(curly) > 0,
        "c4_kept_word_frac": lines.per_doc_sum(np.where(kept, n_words, 0)),      # divided by the caller
    }


def heuristics_columns(texts, urls) -> dict[str, np.ndarray | list]:
    """heuristics_v2 for a whole batch: one array per field, vectorised with Arrow and numpy."""
    p = _patterns()
    arr = T.as_text_array(texts)
    chars = _ints(pc.utf8_length(arr))

    # lines of str.splitlines(), for bullets, ellipses and C4; the text's tokens are its lines' tokens
    split_lines = _pieces(arr, _LINE_BREAKS, drop_trailing_empty=True)
    line_tokens = piece_tokens(split_lines.values)
    toks = T.Pieces(line_tokens.values, line_tokens.offsets[split_lines.offsets])

    # Gopher quality: tokens, and the words among them (tokens with a character that is not punctuation)
    encoded = pc.dictionary_encode(toks.values)
    tok_ids = _ints(encoded.indices)
    vocab = encoded.dictionary
    tok_len = _ints(pc.utf8_length(vocab))[tok_ids]
    is_word = ~_flags(pc.match_substring_regex(vocab, p["symbol_token"]))[tok_ids]
    alpha = _flags(pc.match_substring_regex(vocab, r"\pL"))[tok_ids]
    n_tokens = toks.counts
    n_words = toks.per_doc_sum(is_word)
    stop_ids = {w: i for i, w in enumerate(vocab.to_pylist()) if w in GOPHER_STOP_WORDS}
    stop_distinct = np.zeros(len(arr), dtype=np.int64)
    stop_count = np.zeros(len(arr), dtype=np.int64)
    if stop_ids:
        doc = toks.doc_index()
        for i in stop_ids.values():
            per_doc = np.bincount(doc[tok_ids == i], minlength=len(arr))
            stop_distinct += per_doc > 0
            stop_count += per_doc
    ngram = _ngram_chars(toks.values, tok_ids, tok_len, toks.offsets)

    n_split = split_lines.counts
    bullet = _flags(pc.match_substring_regex(pc.utf8_ltrim_whitespace(split_lines.values), "^(?:•|-)"))
    ellipsis_line = _flags(pc.match_substring_regex(pc.utf8_rtrim_whitespace(split_lines.values), p["ellipsis_end"]))
    c4 = _c4(split_lines, line_tokens)

    # Gopher repetition: lines split on runs of "\n", paragraphs on runs of 2+ "\n" of the trimmed text
    rep_lines = _pieces(arr, "\n+", drop_trailing_empty=False)
    rep_line_len = _ints(pc.utf8_length(rep_lines.values))
    dup_lines, dup_line_chars = _repeats(rep_lines, rep_line_len)
    paras = _pieces(pc.utf8_trim_whitespace(arr), "\n\n+", drop_trailing_empty=False)
    dup_paras, dup_para_chars = _repeats(paras, _ints(pc.utf8_length(paras.values)))

    # FineWeb: non-blank "\n" lines as they are
    fw_lines = T.Pieces(*_non_blank(_pieces(arr, "\n", drop_trailing_empty=False)))
    fw_len = _ints(pc.utf8_length(fw_lines.values))
    _, fw_dup_chars = _repeats(fw_lines, fw_len)
    newlines = _ints(pc.count_substring(arr, "\n"))

    cols: dict[str, np.ndarray | list] = {
        "char_count": chars,
        "token_count": n_tokens,
        "word_count": n_words,
        "line_count": n_split,
        "paragraph_count": paras.counts,
        "mean_word_length": _div(toks.per_doc_sum(np.where(is_word, tok_len, 0)), n_words),
        "hash_word_ratio": _div(_ints(pc.count_substring(arr, "#")), n_tokens),
        "ellipsis_word_ratio": _div(_ints(pc.count_substring(arr, "...")) + _ints(pc.count_substring(arr, "…")), n_tokens),
        "bullet_line_frac": _div(split_lines.per_doc_sum(bullet), n_split),
        "ellipsis_line_frac": _div(split_lines.per_doc_sum(ellipsis_line), n_split),
        "alpha_word_frac": _div(toks.per_doc_sum(alpha), n_tokens),
        "stop_words_distinct": stop_distinct,
        "stop_word_count": stop_count,
        "dup_line_frac": _div(dup_lines, rep_lines.counts),
        "dup_para_frac": _div(dup_paras, paras.counts),
        "dup_line_char_frac": _div(dup_line_chars, chars),
        "dup_para_char_frac": _div(dup_para_chars, chars),
        **{name: _div(ngram[:, i], chars) for i, name in enumerate(
            ["top_2gram_char_frac", "top_3gram_char_frac", "top_4gram_char_frac"]
            + [f"dup_{n}gram_char_frac" for n in range(5, 11)])},
        **c4,
        "c4_kept_word_frac": _div(c4["c4_kept_word_frac"], T.words(arr).counts),
        "fw_line_punct_frac": _div(fw_lines.per_doc_sum(_flags(pc.match_substring_regex(fw_lines.values, p["fw_terminal"]))),
                                   fw_lines.counts),
        "fw_short_line_frac": _div(fw_lines.per_doc_sum(fw_len <= FW_SHORT_LINE), fw_lines.counts),
        "fw_dup_line_char_frac": _div(fw_dup_chars, chars - newlines),
        "fw_newline_word_ratio": _div(newlines, n_tokens),
    }
    url_rows = [url_signals(u) for u in urls]
    for name, _ in FIELDS:
        if name.startswith("url_"):
            cols[name] = [r[name] for r in url_rows]
    return cols


def _non_blank(pieces: T.Pieces) -> tuple[pa.Array, np.ndarray]:
    keep = _ints(pc.utf8_length(pc.utf8_trim_whitespace(pieces.values))) > 0
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return pieces.values.filter(pa.array(keep)), kept_before[pieces.offsets]


def _cut(texts, max_chars: int) -> pa.Array:
    arr = T.as_text_array(texts)
    return pc.utf8_slice_codeunits(arr, 0, max_chars) if max_chars else arr


def heuristics_frame(texts, urls, max_chars: int = 1_000_000) -> pd.DataFrame:
    """heuristics_v2 of a batch as a DataFrame, one column per field (texts cut at max_chars)."""
    cols = heuristics_columns(_cut(texts, max_chars), list(urls))
    return pd.DataFrame({name: cols[name] for name, _ in FIELDS})


def heuristics(text: str | None, url: str | None = None) -> dict:
    """heuristics_v2 of one document (a batch of one)."""
    row = heuristics_frame([text], [url]).iloc[0]
    return {name: (row[name].item() if hasattr(row[name], "item") else row[name]) for name, _ in FIELDS}


def heuristics_batches(batches, max_chars: int = 1_000_000):
    """mapInArrow function: batches of (doc_id, crawl, text, url) -> (doc_id, crawl, heuristics_v1 NULL,
    heuristics_v2). Arrow in, Arrow out: no pandas conversion of the texts."""
    v1_type = pa.struct([pa.field(name, _ARROW_TYPES[t]) for name, t in V1_FIELDS])
    for batch in batches:
        cols = heuristics_columns(_cut(batch.column("text"), max_chars), batch.column("url").to_pylist())
        struct = pa.StructArray.from_arrays(
            [pa.array(cols[name], type=_ARROW_TYPES[t]) for name, t in FIELDS], names=[n for n, _ in FIELDS])
        yield pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), batch.column("crawl"), pa.nulls(batch.num_rows, v1_type), struct],
            names=["doc_id", "crawl", V1_VERSION, VERSION])


_ARROW_TYPES = {"int": pa.int32(), "double": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}

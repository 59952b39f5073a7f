"""Main content by blocks: a page's text blocks, their features, and a learned keep/drop decision per block.

Reads a parsed page (resiliparse HTMLTree) and the shipped model, udfs/models/blocks_v1.json (trained by
bench/train_extractor.py); writes nothing. The same page and model give the same text on every run.

How a page becomes blocks (C passes, no Python walk over the DOM): resiliparse renders the body as minimal
HTML (`preserve_formatting="minimal_html"`, links kept): one line per text block, with `<h1>`..`<h6>`,
`<p>`, `<li>` (inside `<ul>`/`<ol>`), `<pre>` and `<a href>` marking what the block is and which of its
characters are link text. A second rendering skips the elements BOILERPLATE_SELECTORS names (nav, aside,
footer, form, and class/id tokens such as comment, related, share, sidebar, cookie); a block it lacks is
`in_clean` = False. That is a hint, not a rule: much of the gold text of some page sets lies inside such
elements (bench/results/train_extractor.json). A `<pre>` element is one block, its line breaks kept.
resiliparse's own main-content rendering as a third hint was measured and left out (little gain for a
quarter of the extractor's time; README, Main-text extraction).

Features per block (FEATURES) are computed with numpy, for any number of pages at once: size, link
density, kind of block, list depth, punctuation, digits, position, title match, the same averaged over
neighbouring blocks, and page-level context. A gradient-boosted tree model (TreeModel: complete trees in
JSON, evaluated here in numpy) gives each block a log-odds of being main content; blocks at or above the
model's threshold are kept, in page order.
"""
from __future__ import annotations

import html as html_lib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).with_name("models") / "blocks_v1.json"

_TAG = re.compile(r"<[^>]*>")
_BOILER_TOKENS = ("comment", "related", "share", "social", "footer", "sidebar", "menu", "nav", "breadcrumb", "widget",
                  "cookie", "banner", "promo", "advert", "newsletter", "subscribe", "login", "popup", "modal")
BOILERPLATE_SELECTORS = ("nav", "aside", "footer", "form", *(f'[{attr}*="{token}"]' for token in _BOILER_TOKENS
                                                             for attr in ("class", "id")))
KINDS = ("plain", "p", "li", "h1", "h", "pre")
WINDOWS = (1, 3)                # neighbour averages over +-1 and +-3 blocks
ANALYSED_CHARS = 500            # per block, for character statistics (ratios; counts scaled to the length)
PART_BLOCKS, PART_CHARS = 20_000, 4_000_000     # a bigger page is classified in parts of at most this much


@dataclass
class Blocks:
    texts: list[str]             # the block's text, tags removed, entities decoded
    kind: np.ndarray             # index into KINDS
    depth: np.ndarray            # open <ul>/<ol> around the block
    link_chars: np.ndarray       # characters of link text in the block
    in_clean: np.ndarray         # the block is outside every element BOILERPLATE_SELECTORS names
    blank_before: np.ndarray     # an empty line came before the block (paragraph break)

    def part(self, a: int, b: int) -> "Blocks":
        return Blocks(self.texts[a:b], self.kind[a:b], self.depth[a:b], self.link_chars[a:b], self.in_clean[a:b],
                      self.blank_before[a:b])


def _line_texts(rendering: str, lines: list[str], drop: re.Pattern | None = None) -> list[str]:
    """Each line's text with tags (and, given `drop`, what it matches) removed: one regex pass over the whole
    rendering; per line where a tag spans lines (the line counts then differ)."""
    text = _TAG.sub("", drop.sub("", rendering) if drop else rendering)
    out = text.split("\n")
    if len(out) != len(lines):
        out = [_TAG.sub("", drop.sub("", line) if drop else line) for line in lines]
    return out


_ANCHOR_ELEMENT = re.compile(r"<a\b[^>]*>.*?</a>")
_PRE = re.compile(r"<pre\b.*?</pre>", re.S)
_LIST_TAG = re.compile(r"<(/?)(?:ul|ol)\b")
_HEAD_KIND = {"<li": 2, "<p>": 1, "<p ": 1, "<h1": 3, "<pr": 5, **{f"<h{d}": 4 for d in "23456"}}
_NUL = "\x00"


def segment(full: str, clean: str) -> Blocks:
    """Blocks of a page from its two minimal-HTML renderings: the whole body, and the body without the
    elements BOILERPLATE_SELECTORS names. Every non-empty line is a block, but a `<pre>` element is one
    block with its line breaks; a block follows a paragraph break when lines without text came before it.
    Regex passes over the whole rendering and list comprehensions, no per-line branching."""
    if "<pre" in full:              # a <pre> becomes one line: its line breaks travel as NUL until the end
        full = _PRE.sub(lambda m: m.group(0).replace("\n", _NUL), full.replace(_NUL, ""))
    lines = full.split("\n")
    plain = _line_texts(full, lines)
    unlinked = _line_texts(full, lines, _ANCHOR_ELEMENT) if "<a " in full else None
    if "&" in full:
        plain = [html_lib.unescape(t) if "&" in t else t for t in plain]
        if unlinked is not None:
            unlinked = [html_lib.unescape(t) if "&" in t else t for t in unlinked]
    stripped = list(map(str.strip, plain))
    if _NUL in full:
        stripped = [t.replace(_NUL, "\n").strip() if _NUL in t else t for t in stripped]
    idx = [i for i, t in enumerate(stripped) if t]
    kinds = [_HEAD_KIND.get(lines[i].lstrip()[:3], 0) for i in idx]
    texts = [stripped[i] for i in idx]
    if _NUL in full:                # preformatted text keeps its indentation
        texts = [plain[i].replace(_NUL, "\n").strip("\n") if kind == 5 else t
                 for i, t, kind in zip(idx, texts, kinds)]
    rows = np.array(idx, np.int64)
    if unlinked is None:
        links = np.zeros(len(idx), np.int32)
    else:
        rest = map(len, map(str.strip, (unlinked[i] for i in idx)))
        links = np.maximum(np.fromiter(map(len, texts), np.int32, len(idx)) - np.fromiter(rest, np.int32, len(idx)), 0)
    depth = np.zeros(len(idx), np.int16)
    if "l>" in full:                # lists: the <ul>/<ol> open at the end of each line, or on it
        ends = np.cumsum([len(line) + 1 for line in lines])
        marks = [(m.start(), -1 if m.group(1) else 1) for m in _LIST_TAG.finditer(full)]
        if marks:
            at = np.searchsorted(ends, [p for p, _ in marks], side="right")
            step = np.array([d for _, d in marks], np.int64)
            opened = np.bincount(at, weights=(step > 0), minlength=len(lines))
            level = np.maximum(np.cumsum(np.bincount(at, weights=step, minlength=len(lines))), 0)
            depth = (level - np.bincount(at, weights=step, minlength=len(lines)) + opened)[rows].astype(np.int16)
    blank = np.zeros(len(idx), bool)
    if len(idx):
        blank[1:] = np.diff(rows) > 1
    mine = [lines[i] for i in idx]
    return Blocks(texts, np.array(kinds, np.int8), depth, links, _kept(mine, clean), blank)


def _kept(lines: list[str], rendering: str) -> np.ndarray:
    """Which of a page's block lines another rendering of it (one that leaves blocks out) also has: the
    renderings write a block the same way, up to indentation (a <pre> is compared by its first line)."""
    have = set(map(str.strip, rendering.split("\n")))
    firsts = (line.split(_NUL, 1)[0] if _NUL in line else line for line in lines)
    return np.fromiter(map(have.__contains__, map(str.strip, firsts)), bool, len(lines))


FEATURES = (
    "in_clean", "log_chars", "log_words", "link_density", "kind_plain", "kind_p", "kind_li", "kind_h1",
    "kind_h", "kind_pre", "list_depth", "terminal_punct", "punct_per_word", "digit_frac", "upper_start_frac",
    "mean_word_len", "blank_before", "pos", "pos_chars", "in_title",
    "clean_frac_page", "log_blocks_page", "log_words_page", "link_density_page", "share_of_page_words",
    "dist_longest", "before_longest",
) + tuple(f"{name}_w{w}" for w in WINDOWS for name in ("log_words", "link_density", "terminal_punct", "in_clean"))


def _table(chars: str) -> np.ndarray:
    t = np.zeros(0x10000, bool)
    t[[ord(c) for c in chars]] = True
    return t


_PUNCT_T = _table(".,;:!?。，、")
_TERMINAL_T = _table('.!?…。！？:;"»“”)]')
_DIGIT_T = _table("0123456789")
_UPPER_T = _table("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WORD_T = _table("0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WORD_T[0xC0:] = True                  # letters of other scripts, less spaces and general/CJK punctuation
_WORD_T[[0x2000 + i for i in range(0x70)] + [0x3000 + i for i in range(0x40)] + [0xFEFF, 0xFF0C, 0xFF0E]] = False
_WORD_T[list(map(ord, "\u00d7\u00f7"))] = False
_CJK_T = np.zeros(0x10000, bool)       # scripts written without spaces: every character counts as a word
for _lo, _hi in ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF66, 0xFF9F)):
    _CJK_T[_lo:_hi + 1] = True


def features(pages: list[Blocks], titles: list[str | None]) -> np.ndarray:
    """(blocks of all pages, len(FEATURES)) float32 matrix, in FEATURES order, pages one after another.

    Vectorised over the whole batch of pages: one code-point array of every block's text, table lookups and
    segment sums (np.add.reduceat) per block and per page; no per-block regexes. A word is a run of ASCII
    letters/digits/_ or of characters from U+00C0 up that are not spaces or punctuation (characters beyond
    U+FFFF count as letters); in Chinese and Japanese script every character is a word (there are no
    spaces to count, and a paragraph would otherwise be one long word). Character statistics read a block's
    first ANALYSED_CHARS characters (counts scaled to its length)."""
    sizes = np.fromiter((len(p.texts) for p in pages), np.int64, len(pages))
    total = int(sizes.sum())
    if total == 0:
        return np.zeros((0, len(FEATURES)), np.float32)
    texts = [t for p in pages for t in p.texts]
    page_of = np.repeat(np.arange(len(pages)), sizes)
    page_start = (np.cumsum(sizes) - sizes)[page_of]
    page_size = sizes[page_of]
    counts = sizes[sizes > 0]
    first = (np.cumsum(sizes) - sizes)[sizes > 0]    # first block of each page that has blocks
    per_page = lambda v: np.repeat(v, counts)  # noqa: E731
    cat = lambda name, dtype: np.concatenate([getattr(p, name) for p in pages]).astype(dtype)  # noqa: E731

    full_lengths = np.fromiter(map(len, texts), np.int64, total)
    if not full_lengths.all():
        raise ValueError("a block without text (segment() never makes one)")
    if full_lengths.max() > ANALYSED_CHARS:
        texts = [t[:ANALYSED_CHARS] for t in texts]
    lengths = np.minimum(full_lengths, ANALYSED_CHARS)
    cp = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), np.uint32)
    cp = np.minimum(cp, 0xFFFF - 1) if cp.max() > 0xFFFF else cp     # astral: a letter (U+FFFE)
    starts = np.cumsum(lengths) - lengths            # every block has text: no empty segment
    chars = full_lengths.astype(np.float64)
    scale = full_lengths / lengths                   # counts in a block's first ANALYSED_CHARS, scaled
    is_word = _WORD_T[cp]
    word_start = is_word.copy()
    word_start[1:] &= ~is_word[:-1]
    word_start[starts] = is_word[starts]             # a word never continues across blocks
    word_start |= _CJK_T[cp]
    count = lambda mask: np.add.reduceat(mask.view(np.uint8), starts, dtype=np.int64) * scale  # noqa: E731
    words = count(word_start)
    wsafe = np.maximum(words, 1)
    terminal = _TERMINAL_T[cp[starts + lengths - 1]].astype(np.float64)
    punct = count(_PUNCT_T[cp]) / wsafe
    digits = count(_DIGIT_T[cp]) / chars
    upper = count(word_start & _UPPER_T[cp]) / wsafe
    word_len = count(is_word) / wsafe
    in_title = np.concatenate([_title_parts_match(p.texts, t) for p, t in zip(pages, titles)]).astype(np.float64)

    link_chars = cat("link_chars", np.float64)
    link_density = np.minimum(link_chars / chars, 1.0)
    in_clean = cat("in_clean", np.float64)
    kind = np.zeros((total, len(KINDS)))
    kind[np.arange(total), cat("kind", np.intp)] = 1.0
    at = np.arange(total) - page_start               # position of the block in its page
    pos = at / np.maximum(page_size - 1, 1)
    cum = np.cumsum(chars)
    page_chars = np.add.reduceat(chars, first)
    pos_chars = ((cum - chars) - per_page(np.cumsum(page_chars) - page_chars) + chars / 2) / per_page(page_chars)
    page_words = per_page(np.add.reduceat(words, first))
    most = np.flatnonzero(words == per_page(np.maximum.reduceat(words, first)))
    owner = np.searchsorted(first, most, side="right") - 1
    longest = per_page(most[np.unique(owner, return_index=True)[1]]) - page_start   # first block with most words
    dist_longest = np.abs(at - longest) / page_size
    before_longest = (at < longest).astype(np.float64)
    log_words = np.log1p(words)
    page = [per_page(np.add.reduceat(in_clean, first)) / page_size, np.log1p(page_size), np.log1p(page_words),
            per_page(np.add.reduceat(link_chars, first) / page_chars)]
    cols = [in_clean, np.log1p(chars), log_words, link_density, *kind.T, cat("depth", np.float64),
            terminal, punct, digits, upper, word_len, cat("blank_before", np.float64), pos,
            pos_chars, in_title, *page, words / np.maximum(page_words, 1), dist_longest, before_longest]
    near = np.stack([log_words, link_density, terminal, in_clean], axis=1)
    lo_page, hi_page = page_start, page_start + page_size
    return np.concatenate([np.stack(cols, axis=1), *(_window_mean(near, w, lo_page, hi_page) for w in WINDOWS)],
                          axis=1).astype(np.float32)


_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:·•»/]\s+")


def _title_parts_match(texts: list[str], title: str | None) -> np.ndarray:
    """Blocks whose text is the page title, or one of its parts between separators ("Headline | Site")."""
    if not title:
        return np.zeros(len(texts), bool)
    title = " ".join(title.split()).lower()
    parts = {title, *(p for p in _TITLE_SEPARATORS.split(title) if len(p) >= 4)}
    return np.fromiter(map(parts.__contains__, map(str.lower, texts)), bool, len(texts))


def _window_mean(x: np.ndarray, w: int, lo_page: np.ndarray, hi_page: np.ndarray) -> np.ndarray:
    """Mean of each column over the rows i-w..i+w that exist in row i's page [lo_page, hi_page)."""
    n = len(x)
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    hi = np.minimum(np.arange(n) + w + 1, hi_page)
    lo = np.maximum(np.arange(n) - w, lo_page)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


# ------------------------------------------------------------------------------------------------ model

class TreeModel:
    """Gradient-boosted regression trees over FEATURES, evaluated for all blocks of a page at once.

    Every tree is stored complete to `depth` levels (a leaf above that depth is a node whose threshold
    sends everything left): per tree, `feature` and `threshold` of its 2**depth - 1 inner nodes in breadth
    order, and the `value` of its 2**depth leaves. A row goes right where x[feature] > threshold. The score
    is `base` plus one leaf value per tree, a log-odds; p = sigmoid(score)."""

    def __init__(self, spec: dict):
        if tuple(spec["features"]) != FEATURES:
            raise ValueError("block model was trained on other features than udfs.blocks.FEATURES")
        self.version = spec["version"]
        self.base = float(spec["base"])
        self.threshold = float(spec["threshold"])
        self.depth = int(spec["depth"])
        inner, leaves = 2 ** self.depth - 1, 2 ** self.depth
        feature = np.array([t["feature"] for t in spec["trees"]], np.int32)
        split = np.array([t["threshold"] for t in spec["trees"]], np.float32)
        value = np.array([t["value"] for t in spec["trees"]], np.float64)
        if feature.shape[1:] != (inner,) or split.shape[1:] != (inner,) or value.shape[1:] != (leaves,):
            raise ValueError(f"block model trees must be complete to depth {self.depth}")
        if feature.size and (feature.min() < 0 or feature.max() >= len(FEATURES)):
            raise ValueError("block model refers to a feature that does not exist")
        # One node space for all trees: inner nodes first (tree by tree, breadth order), then leaves. A
        # node's left child is child[node], its right child child[node] + 1 (complete trees).
        trees = len(feature)
        kid = 2 * np.arange(inner) + 1                               # local index of the left child
        child = np.where(kid < inner, np.arange(trees)[:, None] * inner + kid,
                         trees * inner + np.arange(trees)[:, None] * leaves + (kid - inner))
        self._child = child.ravel().astype(np.int32)
        self._feature = feature.ravel()
        self._split = split.ravel()
        self._value = np.concatenate([np.zeros(trees * inner), value.ravel()])
        self._roots = (np.arange(trees) * inner).astype(np.int32)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """x: (n, features) -> (n,) scores; all trees for 4,096 rows at once, one step per level."""
        if len(x) > 4096:
            return np.concatenate([self.log_odds(x[i:i + 4096]) for i in range(0, len(x), 4096)])
        n, width = x.shape
        flat_x = np.ascontiguousarray(x, np.float32).ravel()
        row = (np.arange(n, dtype=np.int32) * width)[None, :]
        node = np.repeat(self._roots[:, None], n, axis=1)
        for _ in range(self.depth):
            right = flat_x[row + self._feature[node]] > self._split[node]
            node = self._child[node] + right
        return self.base + self._value[node].sum(axis=0)

    def keep(self, x: np.ndarray) -> np.ndarray:
        return self.log_odds(x) >= np.log(self.threshold / (1 - self.threshold))


@lru_cache(maxsize=4)
def load_model(path: str = str(MODEL_PATH)) -> TreeModel:
    with open(path, encoding="utf-8") as fh:
        return TreeModel(json.load(fh))


def render(blocks: Blocks, keep: np.ndarray) -> str:
    """The kept blocks in page order: a paragraph break where the page had one, one line per block else."""
    out = []
    for k in np.flatnonzero(keep):
        if out and blocks.blank_before[k]:
            out.append("")
        out.append(blocks.texts[k])
    return "\n".join(out)


def page_blocks(tree) -> Blocks:
    """A parsed page (resiliparse HTMLTree) -> its blocks: the two renderings, then segment()."""
    from resiliparse.extract.html2text import extract_plain_text

    opts = dict(preserve_formatting="minimal_html", links=True, alt_texts=False, form_fields=False,
                noscript=False, comments=False)
    return segment(extract_plain_text(tree, **opts),
                   extract_plain_text(tree, skip_elements=BOILERPLATE_SELECTORS, **opts))


def classify(blocks: Blocks, title: str | None, model: TreeModel) -> np.ndarray:
    """Keep/drop per block. A page of more than PART_BLOCKS blocks or PART_CHARS analysed characters is
    classified part by part (each part its own page), so memory stays bounded on a 50 MB page."""
    n = len(blocks.texts)
    analysed = np.cumsum(np.minimum(np.fromiter(map(len, blocks.texts), np.int64, n), ANALYSED_CHARS))
    if n <= PART_BLOCKS and (n == 0 or analysed[-1] <= PART_CHARS):
        return model.keep(features([blocks], [title])) if n else np.zeros(0, bool)
    keep, a = [], 0
    while a < n:
        b = min(a + PART_BLOCKS, max(a + 1, int(np.searchsorted(analysed, analysed[a] + PART_CHARS))))
        part = blocks.part(a, b)
        keep.append(model.keep(features([part], [title])))
        a = b
    return np.concatenate(keep)


def main_text(tree, title: str | None, model: TreeModel | None = None) -> str:
    blocks = page_blocks(tree)
    return render(blocks, classify(blocks, title, model or load_model()))

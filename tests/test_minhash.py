"""udfs/minhash.py without Spark: hashing stability, datasketch equivalence, estimator accuracy, LSH maths."""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from tests.conftest import ROOT
from udfs import text as T
from udfs.minhash import (
    MinHashParams,
    collision_probability,
    estimated_jaccard,
    optimal_bands_rows,
    permutations,
    shingle_hashes,
    signatures,
    text_hashes,
)
from udfs.hashing import word_hashes

WORDS = [f"w{i}" for i in range(5000)]


def shingle_set(text: str, n: int = 5) -> set:
    words = T.normalized_words([text]).values.to_pylist()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)} if len(words) >= n else {tuple(words)}


def _reference_word_hash(word: str) -> int:
    """The documented definition, with Python integers: polynomial over UTF-8 bytes + length, fmix64."""
    mask = (1 << 64) - 1
    data = word.encode("utf-8")
    h = (sum(byte * pow(0x100000001B3, i, 1 << 64) for i, byte in enumerate(data)) + len(data)) & mask
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    return h ^ (h >> 33)


def test_word_hashes_follow_their_definition():
    """The prefix-sum computation over the batch's byte buffer equals the per-word definition."""
    words = ["hello", "world", "hello", "héllo", "日本語", "a" * 1000, "x"]
    got = word_hashes(pa.array(words, type=pa.large_string())).tolist()
    assert got == [_reference_word_hash(w) for w in words]
    assert got[0] == got[2] and got[0] == 1527517226957094417       # pinned: persisted values never change
    sliced = pa.array(["zz", "hello", "world"], type=pa.large_string()).slice(1)
    assert word_hashes(sliced).tolist() == got[:2]


def test_signatures_do_not_depend_on_python_hash_seed():
    code = ("import json,sys; from udfs.minhash import signatures, MinHashParams; "
            "s,_ = signatures(['the same text in every process, hashed the same way'], MinHashParams()); "
            "print(json.dumps(s[0].tolist()))")
    outs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.append(json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                              text=True, check=True).stdout))
    assert outs[0] == outs[1]


def test_permutations_are_datasketch_affine32():
    a, b = permutations(112, seed=7)
    m = MinHash(num_perm=112, seed=7, scheme="affine32")
    assert np.array_equal(m.permutations[0], a) and np.array_equal(m.permutations[1], b)


@pytest.mark.parametrize("ngram", [1, 3, 5])
def test_signatures_bit_identical_to_datasketch(ngram):
    rng = random.Random(ngram)
    texts = [" ".join(rng.choice(WORDS[:300]) for _ in range(rng.randint(0, 80))) for _ in range(60)]
    texts += ["Short text", "one", ""]
    params = MinHashParams(ngram=ngram, bands=16, rows=8, seed=3)
    hashes, offsets = shingle_hashes(T.normalized_words(texts), ngram)
    ours, has = signatures(texts, params)
    for i in range(len(texts)):
        m = MinHash(num_perm=params.num_perm, seed=3, scheme="affine32", hashfunc=lambda x: x)
        m.update_batch([int(v) for v in hashes[offsets[i]:offsets[i + 1]]])
        assert np.array_equal(m.hashvalues, ours[i]), i
        assert has[i] == (offsets[i + 1] > offsets[i])


def test_short_and_empty_documents():
    params = MinHashParams(ngram=5)
    sig, has = signatures(["Only three words", "only THREE words!", "only four words here", "", "   "], params)
    assert has.tolist() == [True, True, True, False, False]
    assert np.array_equal(sig[0], sig[1])                 # a short text is one shingle of all its words
    assert estimated_jaccard(sig[0], sig[2]) < 0.2
    assert (sig[3] == 0xFFFFFFFF).all()


def test_estimates_are_within_the_theoretical_error():
    """For pairs of known Jaccard similarity J, k-permutation estimates have sd sqrt(J(1-J)/k)."""
    rng = random.Random(0)
    params = MinHashParams(ngram=1, bands=32, rows=8)
    k = params.num_perm
    errors = []
    for _ in range(200):
        universe = rng.sample(WORDS, 400)
        shared = rng.randint(40, 360)
        a = universe[:shared] + universe[shared:shared + (400 - shared) // 2]
        b = universe[:shared] + universe[shared + (400 - shared) // 2:]
        j = len(set(a) & set(b)) / len(set(a) | set(b))
        sig, _ = signatures([" ".join(a), " ".join(b)], params)
        est = estimated_jaccard(sig[0], sig[1])
        errors.append((est - j) / math.sqrt(max(j * (1 - j), 1e-9) / k))
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.3          # unbiased
    assert 0.7 < errors.std() < 1.3          # spread as the binomial model says
    assert (np.abs(errors) < 4.5).all()


def test_text_hashes():
    h = text_hashes(["The cat, sat!", "the cat sat", "sat cat the", "", "The cat sat."])
    assert h[0] == h[1] == h[4] and h[0] != h[2]


def test_collision_probability_matches_fineweb_figure():
    assert math.isclose(collision_probability(0.8, 14, 8), 0.9235, abs_tol=1e-4)


def test_optimal_bands_rows():
    b, r = optimal_bands_rows(0.8, 112)
    assert b * r <= 112 and abs((1 / b) ** (1 / r) - 0.8) < 0.06     # the S-curve turns at the threshold
    assert collision_probability(0.95, b, r) > 0.99 and collision_probability(0.5, b, r) < 0.01
    high, low = optimal_bands_rows(0.95, 128), optimal_bands_rows(0.5, 128)
    assert high[1] > low[1]        # a higher threshold needs more rows per band
    with pytest.raises(ValueError):
        optimal_bands_rows(1.5, 64)


def test_version_tag():
    assert MinHashParams().tag == "minhash_5g_14x8"
    assert MinHashParams(ngram=3, bands=20, rows=5, seed=9).tag == "minhash_3g_20x5_s9"
    with pytest.raises(ValueError):
        MinHashParams(bands=0)

"""Paragraph-level dedup: the line-hash kernel, exact counts on a constructed corpus, first-holder marking,
incremental global runs, and gold's cleaning (whole lines only, tokens that reconcile)."""
from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F

from jobs.gold import recipe as R
from jobs.gold import select_corpus
from jobs.runtime import tables
from jobs.runtime.config import JobConfig
from jobs.silver import paragraph_dedup
from schemas import silver
from udfs.paragraphs import ParagraphParams, line_hashes, remove_lines

pytestmark = pytest.mark.filterwarnings("ignore")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
VOCAB = [f"w{i}" for i in range(5000)]


def test_line_indexes_follow_python_split_and_keys_fold_case_punctuation_and_spacing():
    texts = ["Intro here\n\nShare this post!\r\n  tail line  \n", None, "", "SHARE   this, post\nx", "one\n\n\n"]
    offsets, index, hashes, chars = line_hashes(texts)
    per_text = [list(range(a, b)) for a, b in zip(offsets[:-1], offsets[1:])]
    for text, entries in zip(texts, per_text):
        lines = (text or "").split("\n")
        counted = [i for i, line in enumerate(lines) if re.search(r"\w", line)]
        assert [int(index[e]) for e in entries] == counted
        assert [int(chars[e]) for e in entries] == [len(lines[i]) for i in counted]
    share_a, share_b = hashes[per_text[0][1]], hashes[per_text[3][0]]
    assert share_a == share_b                                              # "Share this post!\r" == "SHARE   this, post"
    assert len(set(hashes.tolist())) == len(hashes) - 1
    o2, i2, _, _ = line_hashes(texts, min_words=3)
    assert [int(i) for i in i2[o2[0]:o2[1]]] == [2]                         # only "Share this post!" has 3 words
    assert remove_lines("a\nb\n\nc\n", [1, 3]) == "a\n\n"


def documents(spark, rows, crawl="C1"):
    """silver.documents rows from (doc_id, text, minutes after T0)."""
    return spark.createDataFrame(
        [(d, crawl, f"https://s.example/{d}", "s.example", T0 + timedelta(minutes=m), None, t, "en", 0.9, len(t),
          len(t.split()), "utf-8", "test", None, "f.warc.gz", 0, False) for d, t, m in rows], silver.DOCUMENTS.schema)


def constructed(seed=3, n=40):
    """Documents of unique random lines with planted paragraphs; and for each document the line indexes that
    must be marked at copies=2 (every holder but the earliest)."""
    rng = random.Random(seed)

    def line(k=12):
        return " ".join(rng.choice(VOCAB) for _ in range(k))

    cookie = ["We use cookies to improve your experience.", "WE USE COOKIES to improve your experience!!",
              "we use cookies -- to improve your   experience"]
    signature = "-- Jo Bloggs, Department of Examples"
    rows, planted = [], {}
    for i in range(n):
        lines = [line() for _ in range(rng.randint(2, 6))]
        if i % 4 == 0:                                               # 10 documents hold the cookie notice
            lines.insert(rng.randint(0, len(lines)), rng.choice(cookie))
        if i in (5, 17, 33):                                         # three hold the signature
            lines.append(signature)
        if i == 7:                                                   # a paragraph only this document holds, twice
            lines += ["A paragraph nobody else wrote at all.", "", "A paragraph nobody else wrote at all."]
        rows.append((f"doc{i:02d}", "\n".join(lines), 1000 - i))       # later documents were fetched earlier
    for doc_id, text, _ in rows:
        split = text.split("\n")
        planted[doc_id] = [k for k, s in enumerate(split) if "cookies" in s.lower() or s == signature]
    first = {"cookie": "doc36", "signature": "doc33"}                # the earliest holders: largest i
    want = {d: ([] if d in first.values() else idx) for d, idx in planted.items()}
    return rows, want


def reference_marks(rows, copies=2, scope_of=lambda doc_id: "*"):
    """The rule, written plainly: per document, the indexes of its lines (of at least one word) that at least
    `copies` documents of its scope hold and that an earlier document (fetch minute, then doc_id) holds."""
    def key(line):
        return " ".join(re.findall(r"[^\W_]+", line.lower()))

    holders: dict[tuple, list] = {}
    for doc_id, text, minute in rows:
        for k in {key(line) for line in text.split("\n") if key(line)}:
            holders.setdefault((scope_of(doc_id), k), []).append((minute, doc_id))
    out = {}
    for doc_id, text, _ in rows:
        marks = []
        for i, line in enumerate(text.split("\n")):
            held = holders.get((scope_of(doc_id), key(line)), [])
            if key(line) and len(held) >= copies and min(held)[1] != doc_id:
                marks.append(i)
        out[doc_id] = marks
    return out


def test_constructed_corpus_gives_exact_counts_and_first_holders_keep_their_copy(spark, home):
    rows, want = constructed()
    docs = documents(spark, rows)
    hashes = paragraph_dedup.hash_lines(docs, ParagraphParams())
    out, repeated = paragraph_dedup.transform(hashes, docs, ParagraphParams(), "crawl")
    got = {r.doc_id: r for r in out.collect()}
    assert {d: list(r.repeated_lines) for d, r in got.items()} == want == reference_marks(rows)
    assert sum(r.repeated_paragraphs for r in got.values()) == 9 + 2
    assert sorted((r.docs, r.first.d) for r in repeated.collect()) == [(3, "doc33"), (10, "doc36")]
    texts = {d: t for d, t, _ in rows}
    for d, r in got.items():
        removed = sum(len(texts[d].split("\n")[i]) for i in want[d])
        assert r.repeated_chars == removed and r.repeated_char_frac == pytest.approx(removed / len(texts[d]))
        assert r.max_copies == (10 if any("cookies" in texts[d].split("\n")[i].lower() for i in want[d])
                                else 3 if want[d] else 0)
    assert got["doc07"].repeated_paragraphs == 0 and got["doc07"].paragraphs == len(texts["doc07"].split("\n")) - 1
    strict, rep3 = paragraph_dedup.transform(hashes, docs, ParagraphParams(copies=4), "crawl")
    assert sorted(r.docs for r in rep3.collect()) == [10]                # the signature (3 holders) is no longer repeated
    assert {r.doc_id for r in strict.collect() if r.repeated_paragraphs} == {
        d for d, idx in want.items() if any("cookies" in texts[d].split("\n")[i].lower() for i in idx)}


def test_cleaning_removes_whole_lines_only(spark):
    rng = random.Random(11)
    samples = ["a\nb\n\nc\n", "\r\nfirst\r\nsecond\r\n", "solo", "", "x\n\n\ny\nz", "ünï\ncødé 你好\n\n末尾\n"]
    for _ in range(30):
        samples.append("\n".join(rng.choice(["", " ", "line " + rng.choice(VOCAB), "tail\r"]) for _ in range(rng.randint(1, 9))))
    cases = []
    for text in samples:
        n = len(text.split("\n"))
        cases.append((text, sorted(rng.sample(range(n), rng.randint(0, n)))))
    df = spark.createDataFrame(cases, "text string, remove_lines array<int>")
    got = [r.c for r in df.select(select_corpus.cleaned(F.col("text"), F.col("remove_lines")).alias("c")).collect()]
    for (text, idx), cleaned in zip(cases, got):
        assert cleaned == remove_lines(text, idx)
        kept = [line for i, line in enumerate(text.split("\n")) if i not in set(idx)]
        assert cleaned.split("\n") == kept if kept else cleaned == ""


def _write(spark, home, docs, crawl):
    tables.replace_where(docs, JobConfig(home=home), silver.DOCUMENTS, tables.in_list("crawl", [crawl]))


def _signal(spark):
    return {r.doc_id: list(r.repeated_lines)
            for r in spark.table("silver.paragraph_duplicates").where("scope = 'global'").collect()}


@pytest.mark.slow                   # two dedup runs and a select: about 30 s
def test_incremental_global_run_gives_the_rule_and_a_recipe_cleans_with_it(spark, tmp_path):
    rows, _ = constructed(seed=5, n=24)
    a_rows = [(f"A{d}", t, m) for d, t, m in rows[:12]]
    b_rows = [(f"B{d}", t, m + 5000) for d, t, m in rows[12:]]
    a, b = documents(spark, a_rows, "A"), documents(spark, b_rows, "B")
    incremental = str(tmp_path / "inc")
    _write(spark, incremental, a, "A")
    paragraph_dedup.run(spark, paragraph_dedup.Config(home=incremental, scope="global"))
    stored_a = sorted(spark.table("silver.paragraph_hashes").collect())
    _write(spark, incremental, b, "B")
    second = paragraph_dedup.run(spark, paragraph_dedup.Config(home=incremental, scope="global"))
    assert second["crawls_hashed"] == ["B"] and second["rows_out_hashed"] == 12
    assert sorted(spark.table("silver.paragraph_hashes").where("crawl = 'A'").collect()) == stored_a
    want = reference_marks(a_rows + b_rows)                 # what a full run over both crawls gives
    assert _signal(spark) == want and len(want) == 24 and any(want.values())
    assert second["top_paragraphs"][0][0] == 6 and "cookies" in second["top_paragraphs"][0][1].lower()

    path = tmp_path / "r.yaml"                # a recipe that drops one document and cleans the rest
    path.write_text(json.dumps({"name": "clean_test", "clean": ["repeated_paragraphs"],
                                "signals": {"paragraphs": {"scope": "global"}}, "predicates": [
        {"name": "not_first", "where": "d.doc_id != 'Adoc00'"},
        {"name": "mostly_new", "where": "p.repeated_char_frac < 0.8"}]}))
    s = select_corpus.run(spark, select_corpus.Config(home=incremental, recipe=str(path)))
    texts = {d: t for d, t, _ in a_rows + b_rows}
    corpus = {r.doc_id: r for r in spark.table("gold.corpus").collect()}
    assert sorted(corpus) == sorted(d for d in texts if d != "Adoc00")
    for d, r in corpus.items():
        assert r.text == remove_lines(texts[d], want[d]) and r.estimated_tokens == len(r.text) // 4
    assert [name for _, name, _, _ in s["funnel"]] == ["not_first", "mostly_new", "clean_repeated_paragraphs"]
    assert s["tokens_out"] == sum(r.estimated_tokens for r in corpus.values())
    assert s["cleaned_documents"] == sum(1 for d in corpus if want[d])
    drops = {r.drop_reason: (r.documents, r.estimated_tokens) for r in spark.table("gold.rejections").collect()}
    assert drops["clean_repeated_paragraphs"] == (0, s["cleaned_tokens"]) and s["cleaned_tokens"] > 0


def test_recipes_check_cleaners_and_keep_old_fingerprints():
    base = {"name": "r", "predicates": [{"name": "en", "where": "d.language = 'en'"}]}
    plain = R.parse(base, {})
    assert plain.families() == [] and plain.lines_to_remove() is None
    cleaning = R.parse({**base, "clean": ["repeated_paragraphs"]}, {})
    assert cleaning.families() == ["paragraphs"] and cleaning.fingerprint() != plain.fingerprint()
    assert [s for s in R.steps(cleaning) if s[1] == "missing_paragraphs"] == [(2, "missing_paragraphs", "p.doc_id IS NULL")]
    with pytest.raises(R.RecipeError, match="clean must be a list"):
        R.parse({**base, "clean": ["everything"]}, {})
    assert R.load("dclm_like").clean == ("repeated_paragraphs",)
    old_rule = json.dumps({"name": "r", "signals": {}, "predicates": [p.__dict__ for p in plain.predicates]}, sort_keys=True)
    assert plain.fingerprint() == hashlib.sha256(old_rule.encode()).hexdigest()[:16]    # recipes without cleaning

"""bench/pool.py's builder: real texts wrapped as WARC records, two crawls by date, evaluation domains apart."""
from __future__ import annotations

import gzip

from bench import pool


def test_html_wrapping_and_dates():
    body = pool.as_html("A <title>", "First block & more.\r\n\r\nSecond <b>block</b>.")
    assert b"<title>A &lt;title&gt;</title>" in body
    assert b"<p>First block &amp; more.</p>\n<p>Second &lt;b&gt;block&lt;/b&gt;.</p>" in body
    assert pool._date("29,July,2004").isoformat() == "2004-07-29T00:00:00+00:00"
    assert pool._date("garbage").year == 2004


def test_pool_slice_keeps_evaluation_domains_out(shared_data, tmp_path):
    from udfs.extract import extract_html
    from udfs.warc import ReadOptions, read_archive

    manifest = pool.build(tmp_path, limit=300)
    assert manifest["sources"]["blog_posts"] == 300 and sum(manifest["records"].values()) == 300 + 15 + 3
    assert set(manifest["records"]) == {pool.EARLY, pool.LATE}
    texts, crawls = [], set()
    for path in manifest["crawl_files"]:
        if "/crawls/" not in path:
            continue
        for record in read_archive(path, ReadOptions()):
            if record["kind"] == "response":
                texts.append(extract_html(record["payload"], record["declared_charset"]).text)
        crawls.add(path.rsplit("/", 1)[-1].rsplit("-", 1)[0])
    assert crawls == {pool.EARLY, pool.LATE} and len(texts) == 318
    # a newsgroups test post and a cleaneval gold text are evaluation text, never pool text
    test_docs = (tmp_path / "evals" / "newsgroups_test.txt").read_text()
    assert manifest["evaluation_documents"]["newsgroups_test"] == 7532 and len(test_docs) > 10_000_000
    pool_text = "\n".join(texts)
    for line in [l for l in test_docs.splitlines() if len(l) > 60][:200:20]:
        assert line not in pool_text
    with gzip.open(shared_data / "pool" / "blogs" / "blogs-00000.jsonl.gz", "rt") as fh:
        first = __import__("json").loads(fh.readline())["text"]
    assert " ".join(first.split())[:60] in " ".join(pool_text.split())       # the real text, unchanged but for spacing

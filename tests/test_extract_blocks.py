"""udfs/blocks.py: the default extractor's blocks, features and tree model; its scoring in bench/; hostile pages."""
from __future__ import annotations

import json

import numpy as np
import pytest

from udfs import blocks as B
from udfs.extract import extract_html

FULL = "\n".join([
    "<a href=\"/\">Home</a> <a href=\"/news\">News</a>",
    "<ul>",
    "  <li><a href=\"/a\">Sports</a></li>",
    "  <li>Weather <a href=\"/w\">today</a></li>",
    "</ul>",
    "",
    "<h1>Storm over the valley</h1>",
    "",
    "<p>The storm came in fast &amp; left by evening.</p>",
    "<pre>def f():",
    "    return 1</pre>",
    "Share this",
])
CLEAN = "\n".join(["<h1>Storm over the valley</h1>", "", "<p>The storm came in fast &amp; left by evening.</p>",
                   "<pre>def f():", "    return 1</pre>"])


def _page(title="Storm over the valley | Daily News"):
    return B.segment(FULL, CLEAN), title


def test_segment_finds_blocks_their_kind_depth_links_and_breaks():
    blocks, _ = _page()
    assert blocks.texts == ["Home News", "Sports", "Weather today", "Storm over the valley",
                            "The storm came in fast & left by evening.", "def f():\n    return 1", "Share this"]
    assert [B.KINDS[k] for k in blocks.kind] == ["plain", "li", "li", "h1", "p", "pre", "plain"]
    assert blocks.depth.tolist() == [0, 1, 1, 0, 0, 0, 0]
    assert blocks.link_chars.tolist() == [9, 6, 6, 0, 0, 0, 0]       # the text less the text outside links
    assert blocks.in_clean.tolist() == [False, False, False, True, True, True, False]
    assert blocks.blank_before.tolist() == [False, True, False, True, True, False, False]


def test_an_unclosed_pre_does_not_swallow_the_page():
    blocks = B.segment("<pre>code line\nmore</p>\n<p>Text after.</p>", "")
    assert blocks.texts == ["code line", "more", "Text after."]


def test_features_mean_what_they_say():
    blocks, title = _page()
    x = B.features([blocks], [title])
    col = {name: x[:, i] for i, name in enumerate(B.FEATURES)}
    assert x.shape == (7, len(B.FEATURES)) and x.dtype == np.float32
    assert np.expm1(col["log_words"]).round().tolist() == [2, 1, 2, 4, 8, 4, 2]
    assert col["link_density"][0] == 1.0 and col["link_density"][3] == 0.0
    assert col["terminal_punct"].tolist() == [0, 0, 0, 0, 1, 0, 0]
    assert col["in_title"].tolist() == [0, 0, 0, 1, 0, 0, 0]        # the title's part before " | "
    assert col["pos"][0] == 0.0 and col["pos"][-1] == 1.0
    assert col["before_longest"].tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert col["clean_frac_page"][0] == pytest.approx(3 / 7)
    assert col["in_clean_w1"][0] == 0.0 and col["in_clean_w1"][3] == pytest.approx(2 / 3)


def test_words_of_scripts_without_spaces_are_characters():
    blocks = B.segment("<p>翱翔于太空中，是一项艰苦的工作。</p>\n<p>Two words</p>", "")
    words = np.expm1(B.features([blocks], [None])[:, B.FEATURES.index("log_words")]).round()
    assert words.tolist() == [14, 2]                               # 14 Han characters; punctuation is not a word


def test_features_of_a_batch_equal_features_page_by_page():
    a, title = _page()
    b = B.segment("<p>One more page with a sentence.</p>\n<p>And a second one here.</p>", "")
    empty = B.segment("", "")
    batch = B.features([a, empty, b], [title, None, "Other"])
    single = np.concatenate([B.features([a], [title]), B.features([b], ["Other"])])
    assert np.array_equal(batch, single)
    assert B.features([empty], [None]).shape == (0, len(B.FEATURES))


def _stump_spec(threshold=0.5):
    """One tree of depth 2 over link_density then log_words, by hand."""
    ld, lw = B.FEATURES.index("link_density"), B.FEATURES.index("log_words")
    big = float(np.finfo(np.float32).max)
    return {"version": "test", "features": list(B.FEATURES), "base": -0.5, "threshold": threshold, "depth": 2,
            "trees": [{"feature": [ld, lw, 0], "threshold": [0.5, 1.0, big], "value": [-2.0, 3.0, -4.0, 0.0]}]}


def test_tree_model_walks_complete_trees():
    model = B.TreeModel(_stump_spec())
    x = np.zeros((4, len(B.FEATURES)), np.float32)
    ld, lw = B.FEATURES.index("link_density"), B.FEATURES.index("log_words")
    x[:, ld] = [0.0, 0.0, 0.9, 0.5]
    x[:, lw] = [0.5, 2.0, 5.0, 1.0]
    assert model.log_odds(x).tolist() == [-2.5, 2.5, -4.5, -2.5]      # 0.5 <= 0.5 goes left
    assert model.keep(x).tolist() == [False, True, False, False]
    assert B.TreeModel(_stump_spec(threshold=0.05)).keep(x).tolist() == [True, True, False, True]   # log-odds -2.94
    many = np.repeat(x, 3000, axis=0)                              # more rows than one step takes
    assert np.array_equal(model.log_odds(many), np.repeat(model.log_odds(x), 3000))


def test_tree_model_refuses_a_spec_it_cannot_use():
    spec = _stump_spec()
    with pytest.raises(ValueError, match="other features"):
        B.TreeModel({**spec, "features": spec["features"][:-1]})
    with pytest.raises(ValueError, match="complete"):
        B.TreeModel({**spec, "trees": [{**spec["trees"][0], "value": [1.0, 2.0]}]})
    with pytest.raises(ValueError, match="does not exist"):
        B.TreeModel({**spec, "trees": [{**spec["trees"][0], "feature": [0, 999, 0]}]})


def test_exported_trees_reproduce_scikit_learn():
    """bench/train_extractor.py's export, on a model fitted here: numpy scores equal scikit-learn's."""
    pytest.importorskip("sklearn")
    from sklearn.ensemble import HistGradientBoostingClassifier

    from bench.train_extractor import export

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, len(B.FEATURES))).astype(np.float32)
    y = (x[:, 0] + x[:, 3] * x[:, 5] > 0.2).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=20, max_depth=3, max_leaf_nodes=6, random_state=0).fit(x, y)
    spec = json.loads(json.dumps(export(clf, 0.5, {})))
    model = B.TreeModel(spec)
    assert np.abs(model.log_odds(x) - clf.decision_function(x)).max() < 1e-9


def test_the_shipped_model_loads_and_is_small():
    model = B.load_model()
    assert model.version == "blocks_v1" and 0 < model.threshold < 1
    assert B.MODEL_PATH.stat().st_size < 100_000


def test_default_extractor_keeps_the_article_and_drops_the_chrome():
    page = ("<html><head><title>Storm over the valley - Daily News</title></head><body>"
            "<nav><ul>" + "".join(f"<li><a href='/{i}'>Section {i}</a></li>" for i in range(12)) + "</ul></nav>"
            "<article><h1>Storm over the valley</h1>"
            + "".join(f"<p>Paragraph {i}: the storm came over the ridge in the afternoon, and by evening the rivers "
                      f"in the valley had risen further than anyone in the village could remember.</p>" for i in range(6))
            + "</article><div class='related'><a href='/x'>Ten photos of storms</a></div>"
            "<footer>Copyright 2026 Daily News. All rights reserved.</footer></body></html>")
    doc = extract_html(page.encode(), "utf-8")
    assert doc.error is None and doc.title == "Storm over the valley - Daily News"
    assert all(f"Paragraph {i}:" in doc.text for i in range(6))
    assert "Section 3" not in doc.text and "Copyright" not in doc.text and "Ten photos" not in doc.text


def test_tables_code_and_lists_of_an_article_are_kept_as_a_reader_sees_them():
    page = ("<html><body><article><h1>Results of the 2026 town survey</h1>"
            "<p>The survey asked every household in town about the new bridge and the library hours, and most answered.</p>"
            "<table><tr><th>Question</th><th>Yes</th><th>No</th></tr><tr><td>Build the bridge</td><td>61%</td>"
            "<td>39%</td></tr></table>"
            "<p>The council will discuss both results at its next meeting in March, and decide by the summer.</p>"
            "<pre><code>for row in table:\n    print(row)</code></pre>"
            "<ul><li>First point of the list, which is a full sentence.</li><li>Second point, also a sentence.</li></ul>"
            "</article></body></html>")
    text = extract_html(page.encode(), "utf-8").text
    assert "Build the bridge\t\t61%\t\t39%" in text                  # a table row is a line, cells by tabs
    assert "for row in table:\n    print(row)" in text                # code keeps its lines and indentation
    assert "\nFirst point of the list, which is a full sentence.\nSecond point" in text   # one line per item


@pytest.mark.parametrize("page", [
    b"<html><body></body></html>",
    b"<html><body><pre>" + b"x = 1\n" * 2000 + b"</pre></body></html>",
    b"<html><frameset><frame src='a.html'><frame src='b.html'></frameset></html>",
    b"<html><body>" + b"<div>" * 10_000 + b"<p>Deep text at the bottom of ten thousand levels.</p>" + b"</div>" * 10_000
    + b"</body></html>",
    b"<html><body><p>\xff\xfe\xc3\x28 invalid \xa0\x80 bytes in a sentence that goes on.</p></body></html>",
    b"<html><body><p>\x00\x00 a NUL or two</p></body></html>",
    b"<p>" * 50_000,
])
def test_hostile_pages_give_a_document_or_an_error_never_an_exception(page):
    doc = extract_html(page, None)
    assert isinstance(doc.text, str) and (doc.error is None or doc.text == "")


def test_a_page_bigger_than_one_part_is_classified_part_by_part(monkeypatch):
    monkeypatch.setattr(B, "PART_BLOCKS", 50)
    para = "<p>The river rose during the night and the village woke to water in the streets again.</p>"
    page = ("<html><body>" + para * 240 + "</body></html>").encode()
    doc = extract_html(page, "utf-8")
    assert doc.error is None and doc.text.count("The river rose") == 240


# ------------------------------------------------------------------------------------ bench scoring

def test_shingle_scores():
    from bench.extraction_quality import shingle_scores, shingles

    assert shingles("A b c") == {("a", "b", "c")} and len(shingles("one two three four five")) == 2
    gold = "the quick brown fox jumps over the lazy dog"
    assert shingle_scores([gold], [gold])["f1"] == 1.0
    half = shingle_scores([gold], ["the quick brown fox jumps"])              # 2 of 6 gold shingles, both right
    assert half["precision"] == 1.0 and half["recall"] == pytest.approx(2 / 6)
    assert shingle_scores([gold], [""]) == {"precision": 1.0, "recall": 0.0, "f1": 0.0}
    assert shingle_scores([""], [""])["f1"] == 1.0 and shingle_scores([""], ["text"])["f1"] == 0.0

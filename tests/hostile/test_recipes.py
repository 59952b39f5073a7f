"""Hostile recipes (issue 22): a predicate may call only deterministic functions of the signal columns,
checked before any data is read, with a message naming what is refused."""
from __future__ import annotations

import os

import pytest

from jobs.gold import recipe as R
from jobs.gold import select_corpus
from jobs.gold.recipe import RecipeError
from jobs.runtime import sqlplan
from tests.test_gold_jobs import recipe_file


@pytest.mark.parametrize("where,message", [
    ("h.no_such_column > 1", "predicate broken: .*no_such_column"),
    ("d.word_count = = 3", "predicate broken: .*PARSE_SYNTAX_ERROR"),
    ("d.word_count + 1", "predicate broken: `where` must be a condition"),
    # hostile predicates: only deterministic functions of the signal columns run
    ("java_method('java.lang.System', 'exit', 0) IS NULL", "predicate broken: java_method is not allowed"),
    ("reflect('java.lang.Thread', 'sleep', 100000L) IS NULL", "predicate broken: reflect is not allowed"),
    ("d.doc_id IN (SELECT doc_id FROM silver.documents)", "predicate broken: subquery is not allowed"),
    ("EXISTS (SELECT 1 FROM gold.corpus) OR d.word_count > 0", "predicate broken: subquery is not allowed"),
    ("rand() < 0.5 AND LOWER(d.language) = 'en'", "predicate broken: rand is not allowed"),
    ("raise_error('boom') IS NULL", "predicate broken: raise_error is not allowed"),
    ("`java_method`('java.lang.System', 'exit', 0) IS NULL /* quoted */", "predicate broken: java_method is not allowed"),
    ("`my udf` /* a comment */ (d.word_count) > 0", "predicate broken: my udf is not allowed"),
    # checked without folding constants: two billion characters are never made
    ("length(repeat('x', 2000000000)) > 0 -- AND", "predicate broken: repeat is not allowed"),
])
def test_invalid_recipes_fail_before_any_data_is_read(spark, tmp_path, where, message):
    home = str(tmp_path / "empty-lakehouse")          # no tables at all: any data access would fail differently
    path = recipe_file(tmp_path, [{"name": "fine", "where": "d.word_count > 0"}, {"name": "broken", "where": where}])
    with pytest.raises(RecipeError, match=message):
        select_corpus.run(spark, select_corpus.Config(home=home, recipe=path))
    assert not os.path.exists(os.path.join(home, "gold"))


def test_allowed_functions_pass_the_check(spark):
    from jobs.gold.recipe import ALLOWED_FUNCTIONS

    called = sqlplan.called_functions(
        spark, "coalesce(h.word_count, 0) >= 50 AND lower(d.language) = 'en' AND CAST(d.char_count AS double) > abs(-1)")
    assert sorted(called) == ["abs", "coalesce", "lower"] and set(called) <= ALLOWED_FUNCTIONS
    assert sqlplan.called_functions(spark, "d.word_count > 3 AND d.language IN ('en', 'de') -- 'x(") == []
    assert sqlplan.called_functions(spark, "d.url = 'lower(' OR d.s = 'it''s' AND d.x BETWEEN 1 AND 2") == ["between"]
    for name in R.shipped_recipes():                      # every shipped recipe passes its own check
        select_corpus.validate(spark, R.load(name))

"""Views for the questions users ask most, over the contracts' tables. Created in every session for a local
lakehouse (jobs/runtime/tables.create_views) and by `lakesift views` in a metastore catalog. A view is
created only when every table it reads exists. Table references are {layer.table} placeholders, replaced
by the qualified names of the lakehouse in use."""
from __future__ import annotations

import re
from dataclasses import dataclass

TABLE_REF = re.compile(r"\{(bronze|silver|gold)\.([a-z_]+)\}")


@dataclass(frozen=True)
class View:
    layer: str
    name: str
    comment: str
    sql: str

    @property
    def fullname(self) -> str:
        return f"{self.layer}.{self.name}"

    def tables(self) -> list[tuple[str, str]]:
        return sorted(set(TABLE_REF.findall(self.sql)))


RECIPE_FUNNEL = View("gold", "v_recipe_funnel", "per recipe and predicate: documents and tokens dropped there and left after it", """
SELECT r.recipe, r.step, r.drop_reason, r.documents AS dropped_documents, r.estimated_tokens AS dropped_tokens,
       k.kept_documents + SUM(r.documents) OVER (PARTITION BY r.recipe ORDER BY r.step DESC, r.drop_reason DESC
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - r.documents AS documents_left,
       k.kept_documents, k.kept_tokens
FROM {gold.rejections} r
JOIN (SELECT recipe, count(*) AS kept_documents, sum(estimated_tokens) AS kept_tokens FROM {gold.corpus} GROUP BY recipe) k
  USING (recipe)
""")

SIGNALS_PER_CRAWL = View("silver", "v_signal_distributions", "per crawl and language: documents and deciles of the main heuristic signals", """
SELECT d.crawl, coalesce(d.language, '(none)') AS language, count(*) AS documents,
       percentile_approx(d.word_count, array(0.1, 0.5, 0.9)) AS word_count_p10_p50_p90,
       percentile_approx(d.language_score, array(0.1, 0.5, 0.9)) AS language_score_p10_p50_p90,
       percentile_approx(h.heuristics_v2.mean_word_length, array(0.1, 0.5, 0.9)) AS mean_word_length_p10_p50_p90,
       percentile_approx(h.heuristics_v2.dup_line_frac, array(0.1, 0.5, 0.9)) AS dup_line_frac_p10_p50_p90,
       percentile_approx(h.heuristics_v2.c4_terminal_line_frac, array(0.1, 0.5, 0.9)) AS terminal_line_frac_p10_p50_p90,
       avg(CAST(h.heuristics_v2.url_spam_word_hits > 0 AS INT)) AS spam_url_share
FROM {silver.documents} d JOIN {silver.signals_heuristic} h USING (doc_id)
GROUP BY 1, 2
""")

QUALITY_PER_CRAWL = View("silver", "v_quality_distributions", "per crawl and quality model: documents and score deciles", """
SELECT crawl, model, model_version, count(*) AS documents, count(score) AS scored,
       percentile_approx(score, array(0.1, 0.25, 0.5, 0.75, 0.9)) AS score_p10_p25_p50_p75_p90
FROM {silver.signals_quality} GROUP BY 1, 2, 3
""")

CLUSTER_SIZES = View("silver", "v_duplicate_cluster_sizes", "per dedup version and scope: how many clusters of each size", """
SELECT version, scope, cluster_size, count(DISTINCT cluster_id) AS clusters, count(*) AS documents,
       count(*) - count(DISTINCT cluster_id) AS duplicates_removed
FROM {silver.duplicates} GROUP BY 1, 2, 3
""")

PROXY_RESULTS = View("gold", "v_proxy_results", "per recipe, scale, task and metric: mean and spread over proxy runs (seeds)", """
SELECT recipe, scale, task, metric, count(DISTINCT run_id) AS runs, max(tokens) AS tokens,
       avg(value) AS mean, stddev_samp(value) AS sd, min(value) AS min, max(value) AS max
FROM {gold.proxy_evals} GROUP BY 1, 2, 3, 4
""")

VIEWS = (RECIPE_FUNNEL, SIGNALS_PER_CRAWL, QUALITY_PER_CRAWL, CLUSTER_SIZES, PROXY_RESULTS)

# Databricks notebook source
# MAGIC %md
# MAGIC # Explore signals
# MAGIC Distributions of the heuristic and quality signals per crawl, and what a threshold would keep:
# MAGIC move a cut and see the documents and tokens it drops before writing it into a recipe.

# COMMAND ----------

from _setup import show, spark, table  # the lakehouse session; figures shown and saved

import matplotlib.pyplot as plt
import numpy as np
from pyspark.sql import functions as F

signals = (spark.table(table("silver.documents")).alias("d")
           .join(spark.table(table("silver.signals_heuristic")).alias("h"), "doc_id")
           .select("d.crawl", "d.language", "d.word_count",
                   F.col("h.heuristics_v2.mean_word_length").alias("mean_word_length"),
                   F.col("h.heuristics_v2.dup_line_frac").alias("dup_line_frac"),
                   F.col("h.heuristics_v2.c4_terminal_line_frac").alias("terminal_line_frac"),
                   F.col("h.heuristics_v2.alpha_word_frac").alias("alpha_word_frac")))
# A seeded sample keeps the plot data small on a full crawl; the demo is small enough to take whole.
sample = signals.sample(fraction=min(1.0, 200_000 / max(1, signals.count())), seed=7).toPandas()
print(f"{len(sample)} documents in {sample.crawl.nunique()} crawl(s)")

# COMMAND ----------

columns = ["word_count", "mean_word_length", "dup_line_frac", "terminal_line_frac", "alpha_word_frac"]
# constrained layout keeps the figure's title clear of the panels' titles
fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.4), layout="constrained")
for ax, column in zip(axes, columns):
    for crawl, group in sample.groupby("crawl"):
        values = group[column].dropna()
        if column == "word_count":
            values = np.log10(values + 1)
        ax.hist(values, bins=40, alpha=0.6, label=crawl)
    ax.set_title("log10(word_count + 1)" if column == "word_count" else column)
    ax.set_ylabel("documents")
axes[0].legend(fontsize=7)
fig.suptitle("heuristic signals per crawl")
show(fig, "signal_histograms")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Threshold what-ifs
# MAGIC Share of documents (and estimated tokens) kept as a single cut moves, for the Gopher word-count and
# MAGIC C4 terminal-punctuation rules.

# COMMAND ----------

cuts = {"word_count >=": (sample.word_count, np.array([0, 25, 50, 100, 200, 400, 800])),
        "terminal_line_frac >=": (sample.terminal_line_frac, np.linspace(0, 1, 11))}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
tokens = sample.word_count * 1.3
for ax, (label, (values, grid)) in zip(axes, cuts.items()):
    kept_docs = [(values >= g).mean() for g in grid]
    kept_tokens = [tokens[values >= g].sum() / max(tokens.sum(), 1) for g in grid]
    ax.plot(grid, kept_docs, marker="o", label="documents kept")
    ax.plot(grid, kept_tokens, marker="s", label="tokens kept")
    ax.set_xlabel(label)
    ax.set_ylim(0, 1.05)
    ax.legend()
    for g, d in zip(grid, kept_docs):
        print(f"{label} {g:g}: keeps {d:.1%} of documents")
show(fig, "threshold_what_ifs")

# COMMAND ----------

quality = spark.table(table("silver.signals_quality")).select("model", "score").toPandas() \
    if spark.catalog.tableExists(table("silver.signals_quality").replace("`", "")) else None
if quality is not None and len(quality):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for model, group in quality.groupby("model"):
        ax.hist(group.score.dropna(), bins=50, alpha=0.6, label=model)
    ax.set_xlabel("P(reference quality)")
    ax.legend()
    show(fig, "quality_scores")
else:
    print("no quality scores yet: run `lakesift classify`")

# Databricks notebook source
# MAGIC %md
# MAGIC # Compare recipes
# MAGIC What each recipe keeps (its funnel), and what it buys: proxy-model results from `gold.proxy_evals`
# MAGIC and the MLflow runs of `lakesift ablate` (held-out bits per byte against tokens seen).

# COMMAND ----------

from _setup import CFG, show, spark, table  # the lakehouse session; figures shown and saved

import matplotlib.pyplot as plt
from pyspark.sql import functions as F

rejections = spark.table(table("gold.rejections")).toPandas()
kept = spark.table(table("gold.corpus")).groupBy("recipe").agg(F.count(F.lit(1)).alias("documents"),
                                                                  F.sum("estimated_tokens").alias("tokens")).toPandas()
print(kept.to_string(index=False))

# COMMAND ----------

# One panel per recipe: recipes have predicates of their own, named on the x axis in the order they run
# (those that dropped documents; a recipe that drops none, such as raw, is its one point).
recipes = sorted(set(rejections.recipe) | set(kept.recipe))
fig, axes = plt.subplots(len(recipes), 1, figsize=(9, 1.2 + 3.2 * len(recipes)), layout="constrained", squeeze=False)
for ax, recipe in zip(axes[:, 0], recipes):
    group = rejections[rejections.recipe == recipe].sort_values(["step", "drop_reason"])
    total = group.documents.sum() + int(kept.loc[kept.recipe == recipe, "documents"].sum())
    left = total - group.documents.cumsum()
    ax.plot(range(len(group) + 1), [total, *left], marker="o", drawstyle="steps-post")
    ax.set_xticks(range(len(group) + 1), ["(all documents)", *group.drop_reason], rotation=40, ha="right", fontsize=7)
    ax.set_title(recipe)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("documents left")
axes[-1, 0].set_xlabel("after each predicate, in recipe order")
show(fig, "recipe_funnels")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Proxy-model results

# COMMAND ----------

if spark.catalog.tableExists(table("gold.proxy_evals").replace("`", "")):
    evals = spark.table(table("gold.proxy_evals")).toPandas()
    summary = (evals.groupby(["recipe", "task", "metric"]).value.agg(["mean", "std", "count"]).reset_index())
    print(summary[summary.metric.isin(["bpb", "centered"])].to_string(index=False))
    heldout = evals[(evals.task == "heldout") & (evals.metric == "bpb")]
    core = evals[(evals.task == "core") & (evals.metric == "centered")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.bar(heldout.groupby("recipe").value.mean().index, heldout.groupby("recipe").value.mean().values)
    a.set_ylabel("held-out bits per byte (lower is better)")
    b.bar(core.groupby("recipe").value.mean().index, core.groupby("recipe").value.mean().values)
    b.set_ylabel("CORE-like centered accuracy")
    show(fig, "proxy_results")
else:
    print("no proxy results yet: run `lakesift ablate --recipes raw heuristics_dedup dclm_like`")

# COMMAND ----------

from jobs.runtime.tracking import client_and_experiment  # noqa: E402

client, experiment = client_and_experiment(CFG)
trained = client.search_runs([experiment], "tags.`lakesift.job` = 'train_proxy' AND attributes.status = 'FINISHED'",
                             order_by=["attributes.start_time DESC"], max_results=24)
if trained:
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in trained:
        history = client.get_metric_history(run.info.run_id, "heldout_bpb")
        ax.plot([m.step for m in history], [m.value for m in history], marker="o", ms=2,
                label=f"{run.data.params.get('recipe_name')} seed {run.data.params.get('seed')}")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("held-out bits per byte")
    ax.legend(fontsize=7)
    show(fig, "heldout_curves")
else:
    print("no finished train-proxy runs in this experiment")

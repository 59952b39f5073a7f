# Databricks notebook source
# MAGIC %md
# MAGIC # Inspect duplicate clusters
# MAGIC Cluster sizes per dedup version, the largest clusters with their representative, and the pairwise
# MAGIC word-shingle Jaccard inside a cluster: the place to check that a threshold merges what it should.

# COMMAND ----------

from _setup import show, spark, table  # the lakehouse session; figures shown and saved

import matplotlib.pyplot as plt
import numpy as np
from pyspark.sql import functions as F

duplicates = spark.table(table("silver.duplicates"))
sizes = (duplicates.groupBy("version", "scope", "cluster_size").agg(F.countDistinct("cluster_id").alias("clusters"))
         .orderBy("version", "scope", "cluster_size").toPandas())
print(sizes.to_string(index=False))

# COMMAND ----------

fig, ax = plt.subplots(figsize=(6, 3.5))
for (version, scope), group in sizes.groupby(["version", "scope"]):
    ax.bar(group.cluster_size.astype(str), group.clusters, alpha=0.7, label=f"{version} ({scope})")
ax.set_yscale("log")
ax.set_xlabel("cluster size (documents)")
ax.set_ylabel("clusters")
ax.legend(fontsize=8)
show(fig, "cluster_sizes")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The largest clusters
# MAGIC The representative (kept by recipes) is the member fetched first, then the smallest doc_id.

# COMMAND ----------

largest = (duplicates.where("cluster_size > 1").select("version", "scope", "cluster_id", "cluster_size").distinct()
           .orderBy(F.desc("cluster_size"), "cluster_id").limit(5).collect())
docs = spark.table(table("silver.documents")).select("doc_id", "url", "text")
for row in largest:
    members = (duplicates.where((F.col("cluster_id") == row.cluster_id) & (F.col("version") == row.version) &
                                (F.col("scope") == row.scope))
               .join(docs, "doc_id").select("doc_id", "url", "is_representative", "text").orderBy(F.desc("is_representative"))
               .limit(8).toPandas())
    print(f"\ncluster {row.cluster_id} ({row.version}, {row.scope}): {row.cluster_size} documents")
    for m in members.itertuples():
        print(f"  {'*' if m.is_representative else ' '} {m.url}  {m.text[:90]!r}")


def shingles(text: str, n: int = 5) -> set:
    words = text.lower().split()
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


if largest:
    row = largest[0]
    texts = (duplicates.where((F.col("cluster_id") == row.cluster_id) & (F.col("version") == row.version))
             .join(docs, "doc_id").select("text").limit(12).toPandas().text.tolist())
    sets = [shingles(t) for t in texts]
    matrix = np.array([[len(a & b) / max(1, len(a | b)) for b in sets] for a in sets])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(image, ax=ax, label="5-gram Jaccard")
    ax.set_title(f"largest cluster ({len(texts)} members shown)")
    show(fig, "largest_cluster_jaccard")
else:
    print("no clusters with more than one document")

"""Dedup graphs with Spark DataFrames: pairs from LSH buckets, and the connected components of a large
undirected graph.

Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii 2014, "Connected Components in MapReduce and Beyond":
alternate Large-Star and Small-Star until the edge set stops changing; every component then is a star
around its smallest node. O(log^2 n) rounds in the worst case (O(log n) in practice), so a chain of 10,000
documents converges in a few dozen rounds instead of 10,000 label-propagation steps. Nothing is collected
to the driver; each round is a few aggregations and joins that spill like any Spark shuffle, and is
checkpointed so the query plan does not grow with the rounds.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)
SCOPES = ("crawl", "global")                       # dedup scopes: within each crawl, or across all
NEVER = "timestamp'9999-12-31 00:00:00'"           # warc_date of a document fetched at no known time: last


def bucket_pairs(members: str, limit: int):
    """All pairs of a small sorted bucket; a star around its first member when it is large."""
    return F.expr(f"""
        CASE WHEN size({members}) <= {limit} THEN
          flatten(transform(sequence(0, size({members}) - 2),
                  i -> transform(slice({members}, i + 2, size({members}) - i - 1),
                                 v -> named_struct('a', {members}[i], 'b', v))))
        ELSE transform(slice({members}, 2, size({members}) - 1), v -> named_struct('a', {members}[0], 'b', v))
        END""")


def _canonical(edges: DataFrame) -> DataFrame:
    """Each undirected edge once, as (a, b) with a < b; self-loops dropped."""
    return (edges.where(F.col("a") != F.col("b"))
            .select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b")).distinct())


def _both_ways(edges: DataFrame) -> DataFrame:
    return edges.select(F.col("a").alias("u"), F.col("b").alias("v")).unionByName(
        edges.select(F.col("b").alias("u"), F.col("a").alias("v")))


def _large_star(edges: DataFrame) -> DataFrame:
    """Connect every neighbour v > u of each node u to the smallest node of u's neighbourhood."""
    adj = _both_ways(edges)
    smallest = adj.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    out = adj.where(F.col("v") > F.col("u")).join(smallest, "u").select(F.col("v").alias("a"), F.col("m").alias("b"))
    return _canonical(out)


def _small_star(edges: DataFrame) -> DataFrame:
    """Connect each node u and its smaller neighbours to the smallest of them."""
    lower = _both_ways(edges).where(F.col("v") < F.col("u"))
    smallest = lower.groupBy("u").agg(F.min("v").alias("m"))
    out = (lower.join(smallest, "u").select(F.col("v").alias("a"), F.col("m").alias("b"))
           .unionByName(smallest.select(F.col("u").alias("a"), F.col("m").alias("b"))))
    return _canonical(out)


def _fingerprint(edges: DataFrame) -> tuple[int, int]:
    row = edges.agg(F.count(F.lit(1)).alias("n"),
                    F.sum(F.xxhash64("a", "b").cast("decimal(38,0)")).alias("h")).first()
    return int(row.n), int(row.h or 0)


def connected_components(edges: DataFrame, max_rounds: int = 200) -> tuple[DataFrame, int]:
    """(node, root) for every node that has an edge, root = smallest node of its component; and the
    number of rounds. `edges` has bigint columns a, b."""
    current = _canonical(edges.select("a", "b")).localCheckpoint()
    before = _fingerprint(current)
    for rounds in range(1, max_rounds + 1):
        nxt = _small_star(_large_star(current)).localCheckpoint()
        after = _fingerprint(nxt)
        log.info("connected components: round %d, %d edges", rounds, after[0])
        if after == before:
            current = nxt
            break
        current, before = nxt, after
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    # Converged: each component is a star around its smallest node, the `a` of every canonical edge.
    roots = current.select(F.col("b").alias("node"), F.col("a").alias("root"))
    centres = current.select(F.col("a").alias("node"), F.col("a").alias("root"))
    return roots.unionByName(centres).distinct(), rounds

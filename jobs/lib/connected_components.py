"""Connected components of an edge DataFrame, on the executors: alternating large-star and
small-star (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), the
algorithm GraphFrames runs. No edge and no vertex reaches the driver; each round is a few
shuffles, and the rounds grow with log^2 of the largest component, not with its diameter.

GraphFrames itself is not served for Spark 4 here (docs/decisions.md), so the same algorithm
is written in DataFrame operations: vertices are any orderable column type (ids as strings).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MAX_ROUNDS = 100   # each round at least halves the stars' depth in practice; far above need


def _canonical(edges: DataFrame) -> DataFrame:
    """Undirected edges as (hi, lo) with hi > lo, self-loops and repeats dropped."""
    return (edges.select(F.greatest("src", "dst").alias("hi"), F.least("src", "dst").alias("lo"))
            .where(F.col("hi") != F.col("lo")).distinct())


def _large_star(e: DataFrame) -> DataFrame:
    """Every vertex u links its larger neighbours to the smallest of u and its neighbours."""
    both = e.select(F.col("lo").alias("u"), F.col("hi").alias("v")).unionByName(
        e.select(F.col("hi").alias("u"), F.col("lo").alias("v")))
    m = both.groupBy("u").agg(F.min("v").alias("mv")).select("u", F.least("mv", "u").alias("m"))
    return (both.where(F.col("v") > F.col("u")).join(m, "u")
            .select(F.col("v").alias("hi"), F.col("m").alias("lo")).distinct())


def _small_star(e: DataFrame) -> DataFrame:
    """Every vertex u links itself and its smaller neighbours to the smallest of them."""
    m = e.groupBy("hi").agg(F.min("lo").alias("m"))
    joined = e.join(m, "hi")
    return (joined.select(F.col("lo").alias("hi"), F.col("m").alias("lo"))
            .unionByName(joined.select("hi", F.col("m").alias("lo")).distinct())
            .where(F.col("hi") != F.col("lo")).distinct())


def _signature(e: DataFrame) -> tuple[int, int]:
    """Edge count and an order-free checksum: equal on two rounds means the fixed point."""
    row = e.agg(F.count("*").alias("n"), F.sum(F.xxhash64("hi", "lo").cast("decimal(38,0)")).alias("h")).first()
    return int(row["n"]), int(row["h"] or 0)


def connected_components(edges: DataFrame, max_rounds: int = MAX_ROUNDS) -> DataFrame:
    """edges: columns src, dst. Returns (vertex, component) for every vertex of an edge that
    joins two different vertices; component is the smallest vertex of its component."""
    e = _canonical(edges).localCheckpoint()
    sig = _signature(e)
    if sig[0] == 0:     # no edge joins two vertices (most increments): no round to run
        return e.select(F.col("hi").alias("vertex"), F.col("lo").alias("component"))
    for _ in range(max_rounds):
        e = _small_star(_large_star(e)).localCheckpoint()   # cut the lineage every round
        new_sig = _signature(e)
        if new_sig == sig:
            # The fixed point is a forest of stars, each centred on its smallest vertex.
            centres = e.select(F.col("lo").alias("vertex"), F.col("lo").alias("component")).distinct()
            return e.select(F.col("hi").alias("vertex"), F.col("lo").alias("component")).unionByName(centres)
        sig = new_sig
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def component_representatives(components: DataFrame, ranks: DataFrame, key: str) -> DataFrame:
    """(key, rep) for every vertex of a component: rep is the vertex with the smallest rank
    (ties: the smallest id). ranks: columns key and rank, one row per vertex."""
    ranked = components.join(ranks.withColumnRenamed(key, "vertex"), "vertex")
    best = ranked.groupBy("component").agg(F.min(F.struct("rank", "vertex")).getField("vertex").alias("rep"))
    return ranked.join(best, "component").select(F.col("vertex").alias(key), "rep")

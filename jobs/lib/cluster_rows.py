"""gold.image_clusters rows: the rank inside each image cluster, over all pairs or over the
clusters an increment changed; balance's declared work code for the table (Balance.work_code).

Why a module: the full recompute and the increment rank with this one function, so an
increment equals a recompute with the same centroids row for row; and the table's work
fingerprint covers this code, not the runtime the stage imports.

The rank inside a cluster is a seeded hash order of its members (xxhash64(image_id, seed),
then image_id), so a cluster's ranks change only when its members do. An increment ranks
again only the clusters that gained or lost a pair (a new pair; a pair that left; a pair
whose text changed, in its old and its new cluster) and returns only the rows whose values
changed: every other row stays as stored.
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.udfs.balance_ops import min_cap

COLUMNS = ("image_id", "cluster_id", "sim", "rank_in_cluster", "min_cap", "status", "reason")
# Rejected pairs have no cluster; spread them over this many window partitions instead
# of one null partition (they get no rank).
REJECT_BUCKETS = 256


def min_cap_expr(caps: Sequence[int]):
    """udfs/balance_ops.min_cap over the rank column, as a SQL expression (null past every cap)."""
    return min_cap(F.col("rank_in_cluster"), caps, where=lambda cond, a, b: F.when(cond, F.lit(a)).otherwise(b),
                   none=F.lit(None).cast("int"))


def ranked(scored: DataFrame, seed: int, caps: Sequence[int], tasks: int) -> DataFrame:
    """(image_id, sim, reason, cluster_id) -> gold.image_clusters rows: the rank of each pair
    inside its cluster (every member of a cluster must be in `scored`), the smallest cap, the
    status. One window sorted by a seeded hash inside each cluster; rejected pairs get no rank,
    spread over buckets with null sort keys (cheap to sort). An explicit repartition is not
    coalesced by AQE: every core ranks (3 tasks on 2 cores idled one)."""
    kept = F.col("cluster_id").isNotNull()
    part = F.coalesce(F.col("cluster_id"), -1 - F.pmod(F.xxhash64("image_id"), F.lit(REJECT_BUCKETS)).cast("int"))
    order = Window.partitionBy(part).orderBy(F.when(kept, F.xxhash64("image_id", F.lit(seed))),
                                             F.when(kept, F.col("image_id")))
    rank = F.when(kept, (F.row_number().over(order) - 1).cast("int"))
    return (scored.repartition(max(1, tasks), part).withColumn("rank_in_cluster", rank)
            .select("image_id", "cluster_id", "sim", "rank_in_cluster", min_cap_expr(caps).alias("min_cap"),
                    F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason"))


def cluster_changes(stored: DataFrame, scored: DataFrame, present: DataFrame, seed: int, caps: Sequence[int],
                    tasks: int) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The increment of gold.image_clusters, with the centroids it was assigned by.

    stored: the table's rows; scored: (image_id, sim, reason, cluster_id) of the pairs new or
    changed since (a pair scored again with what it already holds changes nothing); present:
    the image_id of every current pair. Returns the rows to upsert (new, or whose values
    changed), the image_ids to delete (pairs that left), and the clusters ranked again."""
    old = stored.select(*COLUMNS)
    rescored = scored.select("image_id")
    gone = old.select("image_id").join(present.select("image_id"), "image_id", "left_anti")
    touched = (scored.select("cluster_id")
               .unionByName(old.join(rescored, "image_id", "left_semi").select("cluster_id"))
               .unionByName(old.join(gone, "image_id", "left_semi").select("cluster_id"))
               .where(F.col("cluster_id").isNotNull()).distinct())
    stay = (old.where(F.col("status") == "kept").join(touched, "cluster_id", "left_semi")
            .join(rescored, "image_id", "left_anti").join(gone, "image_id", "left_anti")
            .select("image_id", "sim", "reason", "cluster_id"))
    rows = ranked(stay.unionByName(scored.select("image_id", "sim", "reason", "cluster_id")), seed, caps, tasks)
    before = old.join(rows.select("image_id"), "image_id", "left_semi")
    return rows.subtract(before), gone, touched

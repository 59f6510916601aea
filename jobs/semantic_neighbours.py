"""semantic_neighbours: embeddings -> each item's closest earlier neighbour in its k-means
cluster (semantic dedup's expensive step, NeMo Curator's way: cluster, then pairwise inside a
cluster). The threshold is not a parameter here: semantic_dedup applies it as a filter, so
changing it reruns only that cheap stage, never this one and never the embedding.

Two-level clusters (udfs/semantic_dedup.py): the driver fits sqrt(K) coarse centroids on the
hash sample, the executors route every row to one, and each coarse group is split into fine
clusters of about points_per_cluster rows by a k-means of its own, in its task."""
from __future__ import annotations

import math
import sys
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from realsyn.jobs.lib.embedding_tables import embedding_meta
from realsyn.jobs.lib.keep_rank import id_rank, image_rank
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams
from realsyn.udfs.declared import setting
from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY
from realsyn.jobs.lib.vector_sample import collect_vectors, hash_sample
from realsyn.udfs.centroid_assign import assign_fn
from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.semantic_dedup import (CENTROID_COLUMNS, NEIGHBOURS_DDL, SCORED_DDL, cluster_neighbours_fn,
                                         fine_assign_fn, update_fn)
from realsyn.udfs.vector_search import fit_kmeans


@dataclass(frozen=True, kw_only=True)
class SemanticNeighboursParams(StageParams):
    """k-means granularity and the k-means fit (the fit's keys are shared: kmeans.*)."""
    points_per_cluster: int = setting("embedding.dedup_points_per_cluster")
    group_rows: int = setting("embedding.dedup_group_rows")
    kmeans_sample: int = setting("kmeans.sample")
    kmeans_iters: int = setting("kmeans.iters")
    seed: int = setting("run.seed")
    refit: bool = setting("kmeans.refit", default=False)


def dedup_groups(n: int, points_per_cluster: int, group_rows: int) -> int:
    """Coarse k-means groups for n rows: sqrt of the fine clusters (K = n / points_per_cluster),
    so routing (n x groups) and the fine fits (about n x K / groups) cost the same order, and
    no more rows per group on average than group_rows (one task scores a whole group)."""
    k = max(1, n // points_per_cluster)
    return max(1, min(k, max(math.isqrt(k - 1) + 1, -(-n // group_rows))))


def ranked(emb: DataFrame, key: str, ranks: DataFrame) -> DataFrame:
    """The kept vectors with their keep rank (an image with no row ranks as area 0)."""
    return emb.where("status = 'kept'").select(key, "embedding").join(ranks, key, "left").fillna({"rank": 0})


def fit_scores(spark: SparkSession, emb: DataFrame, key: str, ranks: DataFrame, p: SemanticNeighboursParams,
               profile=None) -> tuple[DataFrame, DataFrame] | None:
    """(every kept vector's dedup cluster, earlier neighbour and cosine to it; both levels'
    centroids), from a new fit; None when there is no kept vector."""
    kept = emb.where("status = 'kept'").select(key, "embedding")
    n = kept.count()
    if n == 0:
        return None
    dim, dtype = embedding_meta(emb)
    groups = dedup_groups(n, p.points_per_cluster, p.group_rows)
    fraction = min(1.0, p.kmeans_sample / n)
    _, sample = collect_vectors(hash_sample(kept, key, fraction, p.seed), key, dim, dtype)
    centroids = fit_kmeans(sample, groups, p.kmeans_iters, p.seed, threads=max(1, spark.sparkContext.defaultParallelism))
    assigned = (kept.mapInArrow(assign_fn(CentroidLevels.from_arrays(centroids), dtype),
                                f"{key} string, embedding binary, cluster_id int", profile=profile)
                .select(key, "embedding", F.col("cluster_id").alias("dedup_cluster"))
                .join(ranks, key, "left").fillna({"rank": 0}))
    out = (assigned.groupBy("dedup_cluster")
           .applyInPandas(cluster_neighbours_fn(key, dim, dtype, p.points_per_cluster, p.kmeans_iters, p.seed),
                          SCORED_DDL.format(key=key))).localCheckpoint()
    coarse = spark.createDataFrame([(g, -1, c.astype("<f4").tobytes()) for g, c in enumerate(centroids)],
                                   "dedup_cluster int, dedup_subcluster int, centroid binary")
    return (out.where(F.col(key).isNotNull()).drop("centroid"),
            out.where(F.col(key).isNull()).select(*CENTROID_COLUMNS).unionByName(coarse))


def neighbours(spark: SparkSession, emb: DataFrame, key: str, ranks: DataFrame, p: SemanticNeighboursParams,
               profile=None) -> DataFrame:
    """Every kept vector of emb with its dedup cluster, earlier neighbour and cosine to it.
    ranks: key, rank (smaller first: the item a duplicate group keeps)."""
    fitted = fit_scores(spark, emb, key, ranks, p, profile)
    return fitted[0] if fitted else spark.createDataFrame([], NEIGHBOURS_DDL.format(key=key))


def needs_rescore(stored: DataFrame, vectors: DataFrame, key: str) -> bool:
    """A scored item left or changed its rank: the neighbours of the rows after it may change."""
    return not stored.select(key, "rank").exceptAll(vectors.select(key, "rank")).isEmpty()


def new_scores(stored: DataFrame, vectors: DataFrame, centroids: DataFrame, key: str, dim: int, dtype: str,
               profile=None) -> DataFrame:
    """The neighbour rows to upsert after rows were added: the new rows assigned by the kept
    centroids (coarse, then the group's fine), and every fine cluster they enter scored
    again only where new rows are involved (udfs/semantic_dedup.updated_neighbours)."""
    new = vectors.join(stored.select(key), key, "left_anti")
    coarse = centroids.where("dedup_subcluster = -1").orderBy("dedup_cluster").select("centroid").collect()
    blob = b"".join(r["centroid"] for r in coarse)
    routed = (new.mapInArrow(assign_fn(CentroidLevels.flat(blob, dim), dtype),
                             f"{key} string, embedding binary, rank long, cluster_id int", profile=profile)
              .select(key, "embedding", "rank", F.col("cluster_id").alias("dedup_cluster")))
    fine = centroids.where("dedup_subcluster >= 0")
    placed = (routed.groupBy("dedup_cluster").cogroup(fine.groupBy("dedup_cluster"))
              .applyInPandas(fine_assign_fn(key, dim, dtype),
                             f"{key} string, embedding binary, rank long, dedup_cluster int, dedup_subcluster int"))
    placed = placed.localCheckpoint()
    touched = placed.select("dedup_cluster", "dedup_subcluster").distinct()
    old = (stored.join(touched, ["dedup_cluster", "dedup_subcluster"]).join(vectors.select(key, "embedding"), key)
           .withColumn("is_new", F.lit(False)))
    added = placed.select(key, "embedding", "rank", "dedup_cluster", "dedup_subcluster",
                          F.lit(None).cast("string").alias("neighbour"), F.lit(None).cast("double").alias("max_sim"),
                          F.lit(True).alias("is_new"))
    return (old.unionByName(added).groupBy("dedup_cluster", "dedup_subcluster")
            .applyInPandas(update_fn(key, dim, dtype), NEIGHBOURS_DDL.format(key=key)))


def neighbours_ledger(name: str, emb: DataFrame, key: str, written: DataFrame) -> Ledger:
    """In: the kept vectors. Kept: the scored rows written. Rejected: kept vectors with no
    score row (an anti join, not the difference)."""
    kept = emb.where("status = 'kept'").select(key)
    missing = kept.join(written.select(key), key, "left_anti").count()
    return Ledger(name, kept.count(), written.count(), {"not_scored": missing} if missing else {})


KINDS = (("silver.image_embeddings", "silver.image_neighbours", "silver.image_dedup_centroids", "image_id"),
         ("silver.sentence_embeddings", "silver.sentence_neighbours", "silver.sentence_dedup_centroids", "sentence_id"))
FIT_ID, FIT_ROWS = "fit_id", "fit_rows"
REFIT_GROWTH = 2.0   # fit again once the rows have grown this many times since the fit


class SemanticNeighbours(Stage):
    name = "semantic_neighbours"
    description = "semantic dedup scores: k-means, then each vector's closest earlier neighbour in its cluster"
    inputs = ("silver.image_embeddings", "silver.sentence_embeddings", "silver.images")
    outputs = ("silver.image_neighbours", "silver.sentence_neighbours", "silver.image_dedup_centroids",
               "silver.sentence_dedup_centroids")
    Params = SemanticNeighboursParams
    resources = TaskResources(cpus=1)   # centroid assignment and the in-cluster scores: numpy, one thread
    work_code = {t: ("realsyn.udfs.semantic_dedup",) for t in ("silver.image_neighbours", "silver.sentence_neighbours")}

    def fit_key(self, ctx: Context, p: SemanticNeighboursParams, table: str, out: str) -> str:
        """What decides the stored scores besides the rows: the scoring code, the k-means
        settings and the vectors' own work fingerprint (model, weights, dtype)."""
        return self.work_fingerprint(out, {
            "k": (p.points_per_cluster, p.group_rows), "sample": p.kmeans_sample, "iters": p.kmeans_iters,
            "seed": p.seed, "vectors": ctx.table_property(table, WORK_FINGERPRINT_PROPERTY)})

    def reusable(self, ctx: Context, p: SemanticNeighboursParams, out: str, cents: str, key_fp: str,
                 vectors: DataFrame, key: str) -> bool:
        """Whether the stored scores and centroids can be updated instead of fitted again."""
        if p.refit or ctx.full_refresh or not ctx.store_has(out) or not ctx.store_has(cents):
            return False
        fit_id = ctx.table_property(out, FIT_ID)
        if ctx.table_property(out, WORK_FINGERPRINT_PROPERTY) != key_fp or not fit_id \
                or ctx.table_property(cents, FIT_ID) != fit_id:
            return False
        fitted_rows = int(ctx.table_property(out, FIT_ROWS) or 0)
        if vectors.count() > REFIT_GROWTH * max(fitted_rows, 1):
            ctx.say(f"[{self.name}] {out}: rows grew over {REFIT_GROWTH:g}x since the fit: fitting again")
            return False
        if needs_rescore(ctx.read(out), vectors, key):
            ctx.say(f"[{self.name}] {out}: scored rows left or changed rank: scoring every row again")
            return False
        return True

    def run(self, ctx: Context, p: SemanticNeighboursParams) -> list[Ledger]:
        ledgers = []
        for table, out, cents, key in KINDS:
            emb = ctx.read(table)
            ranks = (image_rank(ctx.read("silver.images").where("status = 'kept'")) if key == "image_id"
                     else id_rank(emb, key))
            vectors = ranked(emb, key, ranks)
            key_fp = self.fit_key(ctx, p, table, out)
            if self.reusable(ctx, p, out, cents, key_fp, vectors, key):
                dim, dtype = embedding_meta(emb)
                changes = new_scores(ctx.read(out), vectors, ctx.read(cents), key, dim, dtype,
                                     ctx.task_profile).localCheckpoint()
                ctx.say(f"[{self.name}] {out}: kept centroids, {changes.count()} row(s) new or with a new neighbour")
                ctx.upsert(out, changes)
            else:
                fitted = fit_scores(ctx.spark, emb, key, ranks, p, ctx.task_profile)
                scores = fitted[0] if fitted else ctx.spark.createDataFrame([], NEIGHBOURS_DDL.format(key=key))
                centroids = fitted[1] if fitted else ctx.spark.createDataFrame([], ", ".join(
                    ("dedup_cluster int", "dedup_subcluster int", "centroid binary")))
                fit_id = uuid.uuid4().hex
                ctx.write(cents, centroids, extra_properties={FIT_ID: fit_id})
                # Written last: its fit id names the centroids it was scored with.
                ctx.write(out, scores, extra_properties={WORK_FINGERPRINT_PROPERTY: key_fp, FIT_ID: fit_id,
                                                         FIT_ROWS: str(scores.count())})
            ledgers.append(neighbours_ledger(out.split(".")[1], emb, key, ctx.read(out)))
        return ledgers


if __name__ == "__main__":
    sys.exit(SemanticNeighbours.main())

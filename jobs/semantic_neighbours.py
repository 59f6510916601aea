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
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from realsyn.jobs.embedding_tables import embedding_meta
from realsyn.jobs.keep_rank import id_rank, image_rank
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams
from realsyn.jobs.vector_sample import collect_vectors, hash_sample
from realsyn.udfs.centroid_assign import assign_fn
from realsyn.udfs.semantic_dedup import NEIGHBOURS_DDL, cluster_neighbours_fn
from realsyn.udfs.vector_search import fit_kmeans


@dataclass(frozen=True)
class SemanticNeighboursParams(StageParams):
    """k-means granularity and the k-means fit (the fit's keys are shared with retrieval)."""
    points_per_cluster: int
    group_rows: int
    kmeans_sample: int
    kmeans_iters: int
    seed: int

    @classmethod
    def from_config(cls, cfg) -> "SemanticNeighboursParams":
        return cls(cfg.get("embedding.dedup_points_per_cluster"), cfg.get("embedding.dedup_group_rows"),
                   cfg.get("retrieval.kmeans_sample"),
                   cfg.get("retrieval.kmeans_iters"), cfg.get("run.seed"))


def coarse_groups(n: int, points_per_cluster: int, group_rows: int) -> int:
    """Coarse k-means groups for n rows: sqrt of the fine clusters (K = n / points_per_cluster),
    so routing (n x groups) and the fine fits (about n x K / groups) cost the same order, and
    no more rows per group on average than group_rows (one task scores a whole group)."""
    k = max(1, n // points_per_cluster)
    return max(1, min(k, max(math.isqrt(k - 1) + 1, -(-n // group_rows))))


def neighbours(spark: SparkSession, emb: DataFrame, key: str, ranks: DataFrame, p: SemanticNeighboursParams,
               profile=None) -> DataFrame:
    """Every kept vector of emb with its dedup cluster, earlier neighbour and cosine to it.
    ranks: key, rank (smaller first: the item a duplicate group keeps)."""
    kept = emb.where("status = 'kept'").select(key, "embedding")
    n = kept.count()
    if n == 0:
        return spark.createDataFrame([], NEIGHBOURS_DDL.format(key=key))
    dim, dtype = embedding_meta(emb)
    groups = coarse_groups(n, p.points_per_cluster, p.group_rows)
    fraction = min(1.0, p.kmeans_sample / n)
    _, sample = collect_vectors(hash_sample(kept, key, fraction, p.seed), key, dim, dtype)
    centroids = fit_kmeans(sample, groups, p.kmeans_iters, p.seed, threads=max(1, spark.sparkContext.defaultParallelism))
    assigned = (kept.mapInPandas(assign_fn(centroids.astype("<f4").tobytes(), dim, dtype, 1),
                                 f"{key} string, embedding binary, cluster_id int, probe int", profile=profile)
                .select(key, "embedding", F.col("cluster_id").alias("dedup_cluster"))
                .join(ranks, key, "left").fillna({"rank": 0}))  # an image with no row ranks as area 0
    return (assigned.groupBy("dedup_cluster")
            .applyInPandas(cluster_neighbours_fn(key, dim, dtype, p.points_per_cluster, p.kmeans_iters, p.seed),
                           NEIGHBOURS_DDL.format(key=key)))


def neighbours_ledger(name: str, emb: DataFrame, key: str, written: DataFrame) -> Ledger:
    """In: the kept vectors. Kept: the scored rows written. Rejected: kept vectors with no
    score row (an anti join, not the difference)."""
    kept = emb.where("status = 'kept'").select(key)
    missing = kept.join(written.select(key), key, "left_anti").count()
    return Ledger(name, kept.count(), written.count(), {"not_scored": missing} if missing else {})


class SemanticNeighbours(Stage):
    name = "semantic_neighbours"
    description = "semantic dedup scores: k-means, then each vector's closest earlier neighbour in its cluster"
    inputs = ("silver.image_embeddings", "silver.sentence_embeddings", "silver.images")
    outputs = ("silver.image_neighbours", "silver.sentence_neighbours")
    Params = SemanticNeighboursParams
    resources = TaskResources(cpus=1)   # centroid assignment and the in-cluster scores: numpy, one thread

    def run(self, ctx: Context, p: SemanticNeighboursParams) -> list[Ledger]:
        ledgers = []
        for table, out, key in (("silver.image_embeddings", "silver.image_neighbours", "image_id"),
                                ("silver.sentence_embeddings", "silver.sentence_neighbours", "sentence_id")):
            emb = ctx.read(table)
            ranks = (image_rank(ctx.read("silver.images").where("status = 'kept'")) if key == "image_id"
                     else id_rank(emb, key))
            ctx.write(out, neighbours(ctx.spark, emb, key, ranks, p, ctx.task_profile))
            ledgers.append(neighbours_ledger(out.split(".")[1], emb, key, ctx.read(out)))
        return ledgers


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["semantic_neighbours", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

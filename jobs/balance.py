"""balance: semantic balance sampling -> gold.image_clusters (PAPER.md section 4).

1. image / synthetic-text cosine with the same CLIP; keep [sim_min, sim_max]
   (above: ocr_like, below: mismatch);
2. k-means of the kept image embeddings (faiss on a sample, centroids broadcast);
3. a seeded random rank inside each cluster (hash of image_id, then a window): an image
   is in the subset of cap t iff rank < t, so the subsets are nested by construction.
One pass over the vectors (similarity and cluster assignment together, in Arrow), one
shuffle for the rank, no collect of the table.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.cluster import embedding_meta, hash_sample
from realsyn.jobs.embed import OUT_DDL, check_same_model, encoder_spec
from realsyn.jobs.stage import Context, Ledger, Stage, ledger_from_status
from realsyn.udfs.balance_ops import in_window, score_and_assign
from realsyn.udfs.embed_batches import embed_texts
from realsyn.udfs.vector_search import fit_kmeans

SCORED_DDL = "image_id string, sim float, reason string, cluster_id int"
# Rejected pairs have no cluster; spread them over this many window partitions instead
# of one null partition (they get no rank).
REJECT_BUCKETS = 256


def min_cap_expr(caps: list[int]):
    expr = None
    for cap in sorted(caps):
        cond = F.col("rank_in_cluster") < cap
        expr = F.when(cond, F.lit(cap)) if expr is None else expr.when(cond, F.lit(cap))
    return expr


@dataclass
class BalanceParams:
    sim_min: float
    sim_max: float
    num_clusters: int
    images_per_cluster: int
    caps: list[int]
    kmeans_sample: int
    kmeans_iters: int
    seed: int
    use_gpu: bool = False
    kmeans_threads: int = 1          # the driver fits k-means while the executors wait

    @classmethod
    def from_config(cls, cfg) -> "BalanceParams":
        return cls(cfg.get("balance.sim_min"), cfg.get("balance.sim_max"), cfg.get("balance.num_clusters"),
                   cfg.get("balance.images_per_cluster"), list(cfg.get("balance.caps")),
                   cfg.get("retrieval.kmeans_sample"), cfg.get("retrieval.kmeans_iters"), cfg.get("run.seed"),
                   cfg.profile == "gpu", driver_threads())


def driver_threads() -> int:
    from pyspark import SparkContext
    sc = SparkContext._active_spark_context
    parallelism = sc.defaultParallelism if sc is not None else 1
    return max(1, min(parallelism, os.cpu_count() or 1))


def fit_centroids(pairs: DataFrame, n_rows: int, dim: int, dtype: str, p: BalanceParams) -> tuple[np.ndarray | None, int]:
    """k-means on a key-hash sample of the pairs, restricted to the similarity window.

    K follows the window's size, estimated from the sample (exact when the sample is all)."""
    fraction = min(1.0, p.kmeans_sample / max(n_rows, 1))
    sample = hash_sample(pairs, "image_id", fraction, p.seed).select("image_id", "embedding", "text_vec")
    table = sample.toArrow()
    table = table.take(table.column("image_id").to_numpy(zero_copy_only=False).argsort(kind="stable"))  # key order
    vecs = in_window(table, dim, dtype, p.sim_min, p.sim_max)
    if len(vecs) == 0:
        return None, 0
    n_window = int(round(len(vecs) / fraction))
    k = max(1, min(p.num_clusters, n_window // p.images_per_cluster or 1))
    return fit_kmeans(vecs, k, p.kmeans_iters, p.seed, p.kmeans_threads), n_window


def scored_fn(dim: int, dtype: str, p: BalanceParams, blob: bytes | None):
    def run(batches):
        for b in batches:
            yield score_and_assign(b, dim, dtype, p.sim_min, p.sim_max, blob, p.use_gpu)
    return run


def balance_pairs(pairs: DataFrame, n_rows: int, dim: int, dtype: str, p: BalanceParams) -> tuple[DataFrame, int]:
    """pairs (image_id, embedding, text_vec or null) -> gold.image_clusters rows, and K.

    One Arrow pass computes similarity, reason and nearest centroid; one window (sorted
    by a seeded hash inside each cluster) gives the rank, and the rank the smallest cap."""
    centroids, _ = fit_centroids(pairs, n_rows, dim, dtype, p)
    blob = None if centroids is None else centroids.astype("<f4").tobytes()
    scored = pairs.select("image_id", "embedding", "text_vec").mapInArrow(scored_fn(dim, dtype, p, blob), SCORED_DDL)
    part = F.coalesce(F.col("cluster_id"), -1 - F.pmod(F.xxhash64("image_id"), F.lit(REJECT_BUCKETS)).cast("int"))
    order = Window.partitionBy(part).orderBy(F.xxhash64("image_id", F.lit(p.seed)), "image_id")
    rank = F.when(F.col("cluster_id").isNotNull(), (F.row_number().over(order) - 1).cast("int"))
    out = (scored.withColumn("rank_in_cluster", rank)
           .select("image_id", "cluster_id", "sim", "rank_in_cluster", min_cap_expr(p.caps).alias("min_cap"),
                   F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason"))
    return out, 0 if centroids is None else len(centroids)


class Balance(Stage):
    name = "balance"
    description = "similarity window, image k-means and nested per-cluster caps"
    inputs = ("silver.image_embeddings", "gold.synthetic")
    outputs = ("gold.image_clusters",)
    config_sections = ("balance", "models", "embedding", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg = ctx.cfg
        emb = ctx.read("silver.image_embeddings")
        check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        spec = encoder_spec(cfg)
        syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
        n_in = syn.count()
        # Text vectors are computed once: the k-means sample and the main pass both read them.
        syn_vecs = (syn.select(F.col("image_id").alias("sentence_id"), F.col("syn_text").alias("text"))
                    .mapInPandas(embed_texts(spec, cfg.get("embedding.batch_size"), dtype),
                                 OUT_DDL.format(key="sentence_id"))
                    .select(F.col("sentence_id").alias("image_id"),
                            F.when(F.col("status") == "kept", F.col("embedding")).alias("text_vec"))
                    .persist(StorageLevel.MEMORY_AND_DISK))
        syn_vecs.count()
        pairs = emb.where("status = 'kept'").select("image_id", "embedding").join(syn_vecs, "image_id")
        out, k = balance_pairs(pairs, n_in, dim, dtype, BalanceParams.from_config(cfg))
        ctx.write("gold.image_clusters", out)
        syn_vecs.unpersist()
        written = ctx.tables.read("gold.image_clusters")
        caps = cfg.get("balance.caps")
        row = written.agg(*[F.count(F.when(F.col("min_cap") <= c, 1)).alias(f"subset_{c}") for c in caps]).first()
        ctx.tracker.metrics({**row.asDict(), "image_clusters": k})
        return [ledger_from_status("balance_pairs", n_in, written)]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["balance", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

"""balance: semantic balance sampling -> gold.image_clusters (PAPER.md section 4).

1. image / synthetic-text cosine with the same CLIP; keep [sim_min, sim_max]
   (above: ocr_like, below: mismatch);
2. k-means of the kept image embeddings (faiss on a sample, centroids broadcast);
3. a seeded random rank inside each cluster (hash of image_id, then a window): an image
   is in the subset of cap t iff rank < t, so the subsets are nested by construction.
The pairs (image and synthetic-text vectors) are stored first as gold.pair_vectors, so a
re-run with another window or caps needs no re-encoding, and the two passes over the
vectors read its files in place. Each pair carries a seeded sample key and every file is
sorted on it in small row groups: the k-means sample (key below a bound) reads only the
first row groups of each file. One shuffle for the rank, no collect of the table.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.embedding_tables import check_same_model, embedding_meta
from realsyn.jobs.models import encoder_spec, weights_identity
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.jobs.stored_rows import StoredRows, Tables
from realsyn.jobs.vector_sample import sample_key
from realsyn.udfs.balance_ops import SAMPLE_BUCKETS, min_cap, sample_bound, sampled_in_window, score_and_assign
from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_texts
from realsyn.udfs.vector_codec import arrow_vectors
from realsyn.udfs.vector_search import fit_kmeans

SCORED_DDL = "image_id string, sim float, reason string, cluster_id int"
PAIR_COLUMNS = ("image_id", "sample_key", "embedding", "text_vec")
PAIRS = "gold.pair_vectors"
# Rejected pairs have no cluster; spread them over this many window partitions instead
# of one null partition (they get no rank).
REJECT_BUCKETS = 256


def min_cap_expr(caps: Sequence[int]):
    """udfs/balance_ops.min_cap over the rank column, as a SQL expression (null past every cap)."""
    return min_cap(F.col("rank_in_cluster"), caps, where=lambda cond, a, b: F.when(cond, F.lit(a)).otherwise(b),
                   none=F.lit(None).cast("int"))


@dataclass(frozen=True)
class BalanceParams:
    """The balancing algorithm's parameters (the stage and the benchmark share them)."""
    sim_min: float
    sim_max: float
    num_clusters: int
    images_per_cluster: int
    caps: tuple[int, ...]
    kmeans_sample: int
    kmeans_iters: int
    seed: int

    @classmethod
    def from_config(cls, cfg) -> "BalanceParams":
        return cls(cfg.get("balance.sim_min"), cfg.get("balance.sim_max"), cfg.get("balance.num_clusters"),
                   cfg.get("balance.images_per_cluster"), tuple(cfg.get("balance.caps")),
                   cfg.get("retrieval.kmeans_sample"), cfg.get("retrieval.kmeans_iters"), cfg.get("run.seed"))


@dataclass(frozen=True)
class BalanceStageParams(StageParams):
    balance: BalanceParams
    encoder: EncoderSpec             # the CLIP of the image embeddings, for the synthetic texts
    batch_size: int

    @classmethod
    def from_config(cls, cfg) -> "BalanceStageParams":
        return cls(BalanceParams.from_config(cfg), encoder_spec(cfg), cfg.get("embedding.batch_size"))


def driver_threads() -> int:
    from pyspark import SparkContext
    sc = SparkContext._active_spark_context
    parallelism = sc.defaultParallelism if sc is not None else 1
    return max(1, min(parallelism, os.cpu_count() or 1))


def pairs_layout(pairs: DataFrame, seed: int) -> DataFrame:
    """gold.pair_vectors rows from (image_id, embedding, text_vec, model): the sample key
    added and each file sorted on it (no shuffle), so the sample pass skips row groups."""
    return pairs.withColumn("sample_key", sample_key("image_id", seed)).sortWithinPartitions("sample_key")


def fit_centroids(pairs: StoredRows, dim: int, dtype: str, p: BalanceParams, threads: int) -> np.ndarray | None:
    """k-means on a key-hash sample of the stored pairs, restricted to the similarity window.

    K follows the window's size, estimated from the sample (exact when the sample is all)."""
    bound = sample_bound(min(1.0, p.kmeans_sample / max(pairs.rows, 1)))
    fraction = bound / SAMPLE_BUCKETS
    pick = partial(sampled_in_window, bound=bound, dim=dim, dtype=dtype, sim_min=p.sim_min, sim_max=p.sim_max)
    table = pairs.map(pick, "image_id string, embedding binary", below=bound).toArrow()
    table = table.take(table.column("image_id").to_numpy(zero_copy_only=False).argsort(kind="stable"))  # key order
    vecs = arrow_vectors(table.column("embedding"), dim, dtype)
    if len(vecs) == 0:
        return None
    k = max(1, min(p.num_clusters, int(round(len(vecs) / fraction)) // p.images_per_cluster or 1))
    return fit_kmeans(vecs, k, p.kmeans_iters, p.seed, threads)


def balance_stored(store: Tables, name: str, dim: int, dtype: str,
                   p: BalanceParams) -> tuple[DataFrame, int, bool]:
    """A stored pairs table (image_id, embedding, text_vec or null) -> gold.image_clusters
    rows, K, and whether the vectors were read in place.

    Two passes over the vectors, both read in place when the files allow it (stored_rows):
    the k-means sample, then similarity, reason and nearest centroid together. One window
    (sorted by a seeded hash inside each cluster) gives the rank, the rank the smallest cap."""
    pairs = StoredRows(store, name, list(PAIR_COLUMNS), key="sample_key")
    # The driver fits k-means while the executors wait: give faiss their cores.
    centroids = fit_centroids(pairs, dim, dtype, p, driver_threads())
    levels = None if centroids is None else CentroidLevels.from_arrays(centroids)
    score = partial(score_and_assign, dim=dim, dtype=dtype, sim_min=p.sim_min, sim_max=p.sim_max,
                    centroids=levels)
    scored = pairs.map(score, SCORED_DDL)
    # Rejected pairs get no rank: spread over buckets, with null sort keys (cheap to sort).
    kept = F.col("cluster_id").isNotNull()
    part = F.coalesce(F.col("cluster_id"), -1 - F.pmod(F.xxhash64("image_id"), F.lit(REJECT_BUCKETS)).cast("int"))
    order = Window.partitionBy(part).orderBy(F.when(kept, F.xxhash64("image_id", F.lit(p.seed))),
                                             F.when(kept, F.col("image_id")))
    rank = F.when(kept, (F.row_number().over(order) - 1).cast("int"))
    # An explicit repartition is not coalesced by AQE: every core ranks (3 tasks on 2 cores idled one).
    tasks = 2 * store.spark.sparkContext.defaultParallelism
    out = (scored.repartition(tasks, part).withColumn("rank_in_cluster", rank)
           .select("image_id", "cluster_id", "sim", "rank_in_cluster", min_cap_expr(p.caps).alias("min_cap"),
                   F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason"))
    return out, 0 if centroids is None else len(centroids), pairs.in_place


class Balance(Stage):
    name = "balance"
    description = "similarity window, image k-means and nested per-cluster caps"
    inputs = ("silver.image_embeddings", "gold.synthetic")
    outputs = (PAIRS, "gold.image_clusters")
    Params = BalanceStageParams
    resources = TaskResources(cpus="embedding.torch_threads", gpus="resources.clip_task_gpus")   # CLIP text encoding

    def weights(self, p: BalanceStageParams) -> dict[str, str]:
        return weights_identity({"clip": p.encoder.weights})

    def run(self, ctx: Context, p: BalanceStageParams) -> list[Ledger]:
        emb = ctx.read("silver.image_embeddings")
        check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
        n_in = syn.count()
        syn_vecs = (syn.select(F.col("image_id").alias("sentence_id"), F.col("syn_text").alias("text"))
                    .mapInPandas(embed_texts(p.encoder, p.batch_size, dtype),
                                 OUTPUT_DDL.format(key="sentence_id"), profile=ctx.task_profile)
                    .select(F.col("sentence_id").alias("image_id"),
                            F.when(F.col("status") == "kept", F.col("embedding")).alias("text_vec")))
        pairs = (emb.where("status = 'kept'").select("image_id", "embedding", "model")
                 .join(syn_vecs, "image_id").select("image_id", "embedding", "text_vec", "model"))
        ctx.write(PAIRS, pairs_layout(pairs, p.balance.seed))
        out, k, in_place = balance_stored(ctx, PAIRS, dim, dtype, p.balance)
        ctx.write("gold.image_clusters", out)
        written = ctx.read("gold.image_clusters")
        caps = p.balance.caps
        row = written.agg(*[F.count(F.when(F.col("min_cap") <= c, 1)).alias(f"subset_{c}") for c in caps]).first()
        ctx.tracker.metrics({**row.asDict(), "image_clusters": k, "pairs_read_in_place": int(in_place)})
        return [ledger_from_status("balance_pairs", n_in, written)]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["balance", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

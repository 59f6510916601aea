"""cluster: sentence embeddings -> gold.text_centroids + gold.sentence_clusters.

k-means (faiss, spherical) is fitted on a deterministic hash sample collected to the
driver; the centroids are broadcast and every sentence is assigned on the executors.
The assignment table is stored clustered by cluster_id, so retrieval needs no shuffle
of the sentence corpus.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.embedding_tables import check_same_model, embedding_meta
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams
from realsyn.udfs.clip_encoder import from_bytes
from realsyn.udfs.vector_search import arrow_vectors, fit_kmeans, nearest_centroids


RANGE_SAMPLE = 20_000   # sample rows routed to estimate the cluster sizes for file boundaries


def hash_sample(df: DataFrame, key: str, fraction: float, seed: int) -> DataFrame:
    """A sample that depends only on the keys and the seed, not on partitioning."""
    if fraction >= 1.0:
        return df
    bucket = F.pmod(F.xxhash64(F.col(key), F.lit(seed)), F.lit(1_000_000))
    return df.where(bucket < int(fraction * 1_000_000))


def collect_vectors(df: DataFrame, key: str, dim: int, dtype: str = "float32") -> tuple[list[str], np.ndarray]:
    """A bounded sample to the driver, through Arrow (not pickled rows), in key order.

    Sorted on the driver: a distributed orderBy would add a sampling job and a shuffle of
    the vectors for a table that is collected anyway."""
    import pyarrow.compute as pc
    table = df.select(key, "embedding").toArrow()
    table = table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))
    return table.column(key).to_pylist(), arrow_vectors(table.column("embedding"), dim, dtype)


def assign_fn(centroids_blob: bytes, dim: int, dtype: str, probes: int, use_gpu: bool):
    """mapInPandas body: attach the nearest centroid(s) of each row's vector."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            vecs = from_bytes(batch["embedding"].tolist(), dim, dtype)
            scores, ids = nearest_centroids(vecs, centroids_blob, dim, probes, use_gpu)
            out = batch.loc[batch.index.repeat(ids.shape[1])].copy()
            out["cluster_id"] = ids.reshape(-1).astype("int32")
            out["probe"] = np.tile(np.arange(ids.shape[1], dtype="int32"), len(batch))
            yield out
    return run


def assign_arrow_fn(centroids_blob: bytes, dim: int, dtype: str, use_gpu: bool,
                    bounds: np.ndarray, part_keys: np.ndarray):
    """mapInArrow body: prepend each row's nearest centroid (vectors read in place, no pandas)
    and the shuffle key of the file its cluster range goes to (see range_files)."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            _, ids = nearest_centroids(arrow_vectors(batch.column("embedding"), dim, dtype),
                                       centroids_blob, dim, 1, use_gpu)
            cid = ids[:, 0].astype(np.int32)
            part = part_keys[np.searchsorted(bounds, cid, side="right")]
            yield pa.RecordBatch.from_arrays([pa.array(cid), *batch.columns, pa.array(part)],
                                             names=["cluster_id", *batch.schema.names, "part"])
    return run


def range_files(spark, sample_clusters: np.ndarray, n_clusters: int, files: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster-id boundaries that cut the (sample-estimated) rows into `files` even runs of
    whole clusters, and for each run a key that Spark's hash partitioning sends to exactly
    that partition. repartitionByRange would find the boundaries itself, but only by
    running the whole assignment twice (once to sample it)."""
    counts = np.bincount(sample_clusters, minlength=n_clusters).cumsum()
    bounds = np.unique(np.searchsorted(counts, counts[-1] * np.arange(1, files) / files, side="right"))
    return bounds.astype(np.int32), partition_keys(spark, len(bounds) + 1)


def partition_keys(spark, parts: int) -> np.ndarray:
    """keys[p]: a long that df.repartition(parts, col) sends to partition p (Spark hashes
    with Murmur3, seed 42, then pmod), so a planned task gets exactly its own rows."""
    probe = spark.range(0, 64 * parts).select("id", F.expr(f"pmod(hash(id), {parts})").alias("p")).collect()
    first: dict[int, int] = {}
    for r in probe:
        first.setdefault(r["p"], r["id"])
    if len(first) < parts:
        raise RuntimeError(f"no hash key found for some of {parts} partitions")
    return np.array([first[p] for p in range(parts)], np.int64)


@dataclass(frozen=True)
class ClusterParams(StageParams):
    num_clusters: int
    sentences_per_cluster: int
    kmeans_sample: int
    kmeans_iters: int
    max_cluster_rows: int
    seed: int
    use_gpu: bool

    @classmethod
    def from_config(cls, cfg) -> "ClusterParams":
        r = "retrieval."
        return cls(cfg.get(r + "num_clusters"), cfg.get(r + "sentences_per_cluster"), cfg.get(r + "kmeans_sample"),
                   cfg.get(r + "kmeans_iters"), cfg.get(r + "max_cluster_rows"), cfg.get("run.seed"),
                   cfg.profile == "gpu")


class Cluster(Stage):
    name = "cluster"
    description = "k-means of the sentence embeddings; every sentence assigned to a centroid"
    inputs = ("silver.sentence_embeddings",)
    outputs = ("gold.text_centroids", "gold.sentence_clusters")
    Params = ClusterParams

    def run(self, ctx: Context, p: ClusterParams) -> list[Ledger]:
        emb = ctx.read("silver.sentence_embeddings")
        model = check_same_model(ctx.read, "silver.sentence_embeddings")
        dim, dtype = embedding_meta(emb)
        kept = emb.where("status = 'kept'").select("sentence_id", "embedding")
        n = kept.count()
        k = p.num_clusters or max(1, round(n / p.sentences_per_cluster))
        fraction = min(1.0, p.kmeans_sample / max(n, 1))
        _, sample = collect_vectors(hash_sample(kept, "sentence_id", fraction, p.seed),
                                    "sentence_id", dim, dtype)
        # The executors are idle while the driver fits: give faiss their cores.
        parallelism = max(1, ctx.spark.sparkContext.defaultParallelism)
        centroids = fit_kmeans(sample, k, p.kmeans_iters, p.seed, threads=parallelism)
        blob = centroids.astype("<f4").tobytes()
        ctx.write("gold.text_centroids", ctx.spark.createDataFrame(
            [(i, centroids[i].astype("<f4").tobytes(), model) for i in range(len(centroids))],
            "cluster_id int, centroid binary, model string"))
        with tempfile.TemporaryDirectory() as tmp:
            np.save(f"{tmp}/text_centroids.npy", centroids)
            ctx.tracker.artifact(f"{tmp}/text_centroids.npy", "centroids")
        # Range-partitioned and sorted: every file holds a run of whole clusters, so retrieve
        # reads a cluster's rows straight from one file (no shuffle of the sentences), and no
        # file is bigger than a task's share.
        files = max(parallelism, -(-n // p.max_cluster_rows))
        # File boundaries need only rough cluster sizes: route a subsample, not all of it.
        step = max(1, len(sample) // RANGE_SAMPLE)
        _, sample_ids = nearest_centroids(sample[::step], blob, dim, 1)
        bounds, keys = range_files(ctx.spark, sample_ids[:, 0], len(centroids), files)
        assigned = kept.mapInArrow(assign_arrow_fn(blob, dim, dtype, p.use_gpu, bounds, keys),
                                   "cluster_id int, sentence_id string, embedding binary, part long")
        clustered = (assigned.repartition(len(keys), "part")
                     .sortWithinPartitions("cluster_id", "sentence_id").drop("part"))
        ctx.write("gold.sentence_clusters", clustered)
        written = ctx.read("gold.sentence_clusters").count()
        ctx.tracker.metrics({"clusters": len(centroids), "kmeans_sample": len(sample)})
        return [Ledger("sentence_clusters", n, written, {})]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["cluster", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

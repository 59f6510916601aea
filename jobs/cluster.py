"""cluster: sentence embeddings -> gold.text_centroids (+ gold.text_coarse_centroids) +
gold.sentence_clusters.

k-means (faiss, spherical) is fitted on a deterministic hash sample collected to the
driver, in two levels from retrieval.coarse_min_clusters clusters up (udfs/centroid_levels.py);
the centroids are broadcast and every sentence is assigned on the executors.
The assignment table is stored clustered by cluster_id, so retrieval needs no shuffle
of the sentence corpus.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from realsyn.jobs.lib.centroid_reuse import FIT_COSINE, mean_fit, stored_fit
from realsyn.jobs.lib.centroid_tables import read_levels
from realsyn.jobs.lib.embedding_tables import check_same_model, embedding_meta, kept_vectors
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams
from realsyn.udfs.declared import setting
from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY
from realsyn.jobs.lib.shuffle_keys import partition_keys
from realsyn.jobs.lib.vector_sample import collect_vectors, hash_sample
from realsyn.schemas import spec
from realsyn.udfs.centroid_assign import assign_fn
from realsyn.udfs.centroid_levels import CentroidLevels, coarse_groups, fit_levels, nearest_clusters


RANGE_SAMPLE = 20_000   # sample rows routed to estimate the cluster sizes for file boundaries


def range_files(spark, sample_clusters: np.ndarray, n_clusters: int, files: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster-id boundaries that cut the (sample-estimated) rows into `files` even runs of
    whole clusters, and for each run a key that Spark's hash partitioning sends to exactly
    that partition. repartitionByRange would find the boundaries itself, but only by
    running the whole assignment twice (once to sample it)."""
    counts = np.bincount(sample_clusters, minlength=n_clusters).cumsum()
    bounds = np.unique(np.searchsorted(counts, counts[-1] * np.arange(1, files) / files, side="right"))
    return bounds.astype(np.int32), partition_keys(spark, len(bounds) + 1)


@dataclass(frozen=True, kw_only=True)
class ClusterParams(StageParams):
    SECTION = "retrieval"
    num_clusters: int
    sentences_per_cluster: int
    kmeans_sample: int = setting("kmeans.sample")
    kmeans_iters: int = setting("kmeans.iters")
    max_cluster_rows: int
    seed: int = setting("run.seed")
    refit: bool = setting("kmeans.refit")
    refit_drift: float = setting("kmeans.refit_drift")
    coarse_min_clusters: int


class Cluster(Stage):
    name = "cluster"
    description = "k-means of the sentence embeddings; every sentence assigned to a centroid"
    inputs = ("silver.sentence_embeddings", "silver.sentence_dedup")
    outputs = ("gold.text_centroids", "gold.text_coarse_centroids", "gold.sentence_clusters")
    Params = ClusterParams
    resources = TaskResources(cpus=1)   # centroid assignment: one faiss thread per task
    work_code = {"gold.text_centroids": ("realsyn.udfs.centroid_levels",)}

    def fit_fingerprint(self, p: ClusterParams, model: str | None) -> str:
        """What decides a fit: the k-means code, its settings and the embedding model."""
        return self.work_fingerprint("gold.text_centroids", {
            "k": (p.num_clusters, p.sentences_per_cluster), "sample": p.kmeans_sample, "iters": p.kmeans_iters,
            "seed": p.seed, "model": model, "coarse_min_clusters": p.coarse_min_clusters})

    def stored_centroids(self, ctx: Context, p: ClusterParams, model, sample: np.ndarray,
                         dim: int) -> CentroidLevels | None:
        """The stored centroids, when they came from the same fit settings and model and still
        fit the (grown) sample (jobs/lib/centroid_reuse.py: the rule every kept fit follows).
        None: fit again."""
        return stored_fit(ctx, "gold.text_centroids", self.fit_fingerprint(p, model), p.refit, p.refit_drift,
                          sample, lambda: read_levels(ctx.read, dim)[0], "centroids")

    def write_levels(self, ctx: Context, p: ClusterParams, model, levels: CentroidLevels, fit: float) -> None:
        fine, coarse, group = levels.arrays()
        ctx.write("gold.text_coarse_centroids", ctx.spark.createDataFrame(
            [(g, coarse[g].tobytes(), model) for g in range(len(coarse))], spec("gold.text_coarse_centroids").schema))
        # Written last: its fingerprint marks the pair as one finished fit.
        ctx.write("gold.text_centroids", ctx.spark.createDataFrame(
            [(i, fine[i].tobytes(), model, int(group[i])) for i in range(len(fine))], spec("gold.text_centroids").schema),
            extra_properties={WORK_FINGERPRINT_PROPERTY: self.fit_fingerprint(p, model), FIT_COSINE: repr(fit)})
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(f"{tmp}/text_centroids.npz", fine=fine, coarse=coarse, group=group)
            ctx.tracker.artifact(f"{tmp}/text_centroids.npz", "centroids")

    def run(self, ctx: Context, p: ClusterParams) -> list[Ledger]:
        emb = ctx.read("silver.sentence_embeddings")
        model = check_same_model(ctx.read, "silver.sentence_embeddings")
        dim, dtype = embedding_meta(emb)
        kept = kept_vectors(ctx.read, "silver.sentence_embeddings", "sentence_id").select("sentence_id", "embedding")
        n = kept.count()
        k = p.num_clusters or max(1, round(n / p.sentences_per_cluster))
        fraction = min(1.0, p.kmeans_sample / max(n, 1))
        _, sample = collect_vectors(hash_sample(kept, "sentence_id", fraction, p.seed),
                                    "sentence_id", dim, dtype)
        parallelism = max(1, ctx.spark.sparkContext.defaultParallelism)
        levels = self.stored_centroids(ctx, p, model, sample, dim)
        if levels is None:
            # The executors are idle while the driver fits: give faiss their cores.
            levels = fit_levels(sample, k, coarse_groups(k, p.coarse_min_clusters), p.kmeans_iters, p.seed,
                                threads=parallelism)
            self.write_levels(ctx, p, model, levels, mean_fit(sample, levels))
        # Range-partitioned and sorted: every file holds a run of whole clusters, so retrieve
        # reads a cluster's rows straight from one file (no shuffle of the sentences), and no
        # file is bigger than a task's share.
        files = max(parallelism, -(-n // p.max_cluster_rows))
        # File boundaries need only rough cluster sizes: route a subsample, not all of it.
        step = max(1, len(sample) // RANGE_SAMPLE)
        _, sample_ids = nearest_clusters(sample[::step], levels, 1)
        bounds, keys = range_files(ctx.spark, sample_ids[:, 0], levels.clusters, files)
        assigned = (kept.mapInArrow(assign_fn(levels, dtype, bounds, keys),
                                    "sentence_id string, embedding binary, cluster_id int, part long",
                                    profile=ctx.task_profile)
                    .select("cluster_id", "sentence_id", "embedding", "part"))
        clustered = (assigned.repartition(len(keys), "part")
                     .sortWithinPartitions("cluster_id", "sentence_id").drop("part"))
        ctx.write("gold.sentence_clusters", clustered)
        written = ctx.read("gold.sentence_clusters").count()
        ctx.tracker.metrics({"clusters": levels.clusters, "coarse_groups": levels.groups, "kmeans_sample": len(sample)})
        return [Ledger("sentence_clusters", n, written, {})]


if __name__ == "__main__":
    sys.exit(Cluster.main())

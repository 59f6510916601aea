"""balance: semantic balance sampling -> gold.image_clusters (docs/paper.md, "Semantic balance").

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

Increments cost about what changed (issue #41). The pairs are written in units keyed by
image and text hash (jobs/lib/pair_rows.py): only new or changed texts are encoded. The image
centroids are kept in gold.image_centroids and reused like the text centroids
(jobs/lib/centroid_reuse.py: fitted again on drift, `--refit` or a change of what decides the
fit). While they are reused, only the pairs encoded since gold.image_clusters last looked are
scored and assigned, only the clusters that gained or lost a pair are ranked again, and only
rows whose values changed are merged (jobs/lib/cluster_rows.py); the first run, a new fit, a
settings change or `--full-refresh` compute every row.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.centroid_reuse import FIT_COSINE, mean_fit, stored_fit
from realsyn.jobs.lib.cluster_rows import cluster_changes, min_cap_expr, ranked
from realsyn.jobs.lib.embedding_tables import check_same_model, embedding_meta
from realsyn.jobs.core.models import weights_identity
from realsyn.jobs.lib.pair_rows import pair_rows, pairs_layout, text_hash
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.params import Declared
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import nested, setting
from realsyn.jobs.lib.stored_rows import StoredRows, Tables
from realsyn.udfs.stored_files import per_batch
from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY, without, write_in_units
from realsyn.schemas import spec
from realsyn.udfs.balance_ops import SAMPLE_BUCKETS, cluster_count, sample_bound, sampled_in_window, score_and_assign
from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.vector_codec import arrow_vectors, from_bytes
from realsyn.udfs.vector_search import fit_kmeans

__all__ = ["PAIRS", "CENTROIDS", "CLUSTERS", "BalanceParams", "Balance", "balance_stored", "full_clusters",
           "min_cap_expr", "pairs_layout", "read_centroids"]

SCORED_DDL = "image_id string, sim float, reason string, cluster_id int"
PAIR_COLUMNS = ("image_id", "sample_key", "embedding", "text_vec")
PAIRS = "gold.pair_vectors"
CENTROIDS = "gold.image_centroids"
CLUSTERS = "gold.image_clusters"
# gold.image_clusters reflects every pair of gold.pair_vectors up to this version: an
# increment scores the pairs encoded by runs that started from it or later.
PAIRS_VERSION = "pairs_version"


@dataclass(frozen=True, kw_only=True)
class BalanceParams(Declared):
    """The balancing algorithm's parameters (the stage and the benchmark share them)."""
    SECTION = "balance"
    sim_min: float
    sim_max: float
    num_clusters: int
    images_per_cluster: int
    caps: tuple[int, ...]
    kmeans_sample: int = setting("kmeans.sample")
    kmeans_iters: int = setting("kmeans.iters")
    seed: int = setting("run.seed")


@dataclass(frozen=True, kw_only=True)
class BalanceStageParams(StageParams):
    balance: BalanceParams = nested(BalanceParams)
    encoder: EncoderSpec = nested(EncoderSpec)   # the CLIP of the image embeddings, for the synthetic texts
    batch_size: int = setting("embedding.batch_size")   # that CLIP's batch, as embed runs it
    refit: bool = setting("kmeans.refit")        # fit new image centroids even when the stored ones fit
    refit_drift: float = setting("kmeans.refit_drift")   # fit again when the sample's fit fell by more (jobs/lib/centroid_reuse.py)


def driver_threads() -> int:
    from pyspark import SparkContext
    sc = SparkContext._active_spark_context
    parallelism = sc.defaultParallelism if sc is not None else 1
    return max(1, min(parallelism, os.cpu_count() or 1))


def rank_tasks(spark) -> int:
    return 2 * spark.sparkContext.defaultParallelism


def fit_sample(pairs: StoredRows, dim: int, dtype: str, p: BalanceParams) -> tuple[np.ndarray, float]:
    """The k-means sample (the pairs whose sample key is below a bound, restricted to the
    similarity window, in key order) and the fraction of the pairs it was drawn from."""
    bound = sample_bound(min(1.0, p.kmeans_sample / max(pairs.rows, 1)))
    pick = partial(sampled_in_window, bound=bound, dim=dim, dtype=dtype, sim_min=p.sim_min, sim_max=p.sim_max)
    table = pairs.map(pick, "image_id string, embedding binary", below=bound).toArrow()
    table = table.take(table.column("image_id").to_numpy(zero_copy_only=False).argsort(kind="stable"))  # key order
    return arrow_vectors(table.column("embedding"), dim, dtype), bound / SAMPLE_BUCKETS


def fit_centroids(sample: np.ndarray, fraction: float, p: BalanceParams, threads: int) -> np.ndarray | None:
    """k-means on the sample; K follows the window's size, estimated from the sample (exact
    when the sample is all)."""
    if len(sample) == 0:
        return None
    k = cluster_count(len(sample), fraction, p.num_clusters, p.images_per_cluster)
    return fit_kmeans(sample, k, p.kmeans_iters, p.seed, threads)


def scorer(dim: int, dtype: str, p: BalanceParams,
           levels: CentroidLevels | None) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Similarity, reason and nearest centroid of a batch of pairs (one pass)."""
    return partial(score_and_assign, dim=dim, dtype=dtype, sim_min=p.sim_min, sim_max=p.sim_max, centroids=levels)


def full_clusters(store: Tables, dim: int, dtype: str, p: BalanceParams, levels: CentroidLevels | None,
                  pairs: StoredRows | None = None) -> DataFrame:
    """gold.image_clusters rows over every stored pair with the given centroids: the stage's
    full path (an increment with the same centroids gives the same rows)."""
    pairs = pairs or StoredRows(store, PAIRS, list(PAIR_COLUMNS), key="sample_key")
    return ranked(pairs.map(scorer(dim, dtype, p, levels), SCORED_DDL), p.seed, p.caps, rank_tasks(store.spark))


def balance_stored(store: Tables, name: str, dim: int, dtype: str,
                   p: BalanceParams) -> tuple[DataFrame, int, bool]:
    """A stored pairs table (image_id, embedding, text_vec or null) -> gold.image_clusters
    rows, K, and whether the vectors were read in place (a fit from scratch).

    Two passes over the vectors, both read in place when the files allow it (stored_rows):
    the k-means sample, then similarity, reason and nearest centroid together. One window
    (sorted by a seeded hash inside each cluster) gives the rank, the rank the smallest cap."""
    pairs = StoredRows(store, name, list(PAIR_COLUMNS), key="sample_key")
    sample, fraction = fit_sample(pairs, dim, dtype, p)
    # The driver fits k-means while the executors wait: give faiss their cores.
    centroids = fit_centroids(sample, fraction, p, driver_threads())
    levels = None if centroids is None else CentroidLevels.from_arrays(centroids)
    out = full_clusters(store, dim, dtype, p, levels, pairs)
    return out, 0 if levels is None else levels.clusters, pairs.in_place


def read_centroids(read, dim: int) -> CentroidLevels:
    """The stored image centroids, as every task receives them."""
    rows = read(CENTROIDS).orderBy("cluster_id").select("centroid").collect()
    fine = from_bytes([r[0] for r in rows], dim) if rows else np.zeros((0, dim), np.float32)
    return CentroidLevels.from_arrays(fine)


class Balance(Stage):
    name = "balance"
    description = "similarity window, image k-means and nested per-cluster caps"
    inputs = ("silver.image_embeddings", "gold.synthetic")
    outputs = (PAIRS, CENTROIDS, CLUSTERS)
    Params = BalanceStageParams
    resources = TaskResources(cpus="models.torch_threads", gpus="resources.clip_task_gpus")   # CLIP text encoding
    unit_rows = "units.embed_rows"   # the pairs' units encode texts: embed's work per row
    work_code = {PAIRS: ("realsyn.jobs.lib.pair_rows",),
                 CENTROIDS: ("realsyn.udfs.balance_ops", "realsyn.udfs.vector_search"),
                 CLUSTERS: ("realsyn.jobs.lib.cluster_rows",)}

    def weights(self, p: BalanceStageParams) -> dict[str, str]:
        return weights_identity({"clip": p.encoder.weights})

    def pairs_key(self, ctx: Context, p: BalanceStageParams, dtype: str) -> str:
        """What decides a stored pair besides its image and text: the text encoder, the
        sample key's seed and the image vectors' own work fingerprint."""
        return self.work_fingerprint(PAIRS, {
            "encoder": p.encoder, "weights": self.weights(p), "dtype": dtype, "seed": p.balance.seed,
            "images": ctx.table_property("silver.image_embeddings", WORK_FINGERPRINT_PROPERTY)})

    def fit_key(self, p: BalanceStageParams, pairs_key: str) -> str:
        """What decides the image centroids: the k-means code and settings, the window, the pairs."""
        b = p.balance
        return self.work_fingerprint(CENTROIDS, {
            "window": (b.sim_min, b.sim_max), "k": (b.num_clusters, b.images_per_cluster),
            "sample": b.kmeans_sample, "iters": b.kmeans_iters, "seed": b.seed, "pairs": pairs_key})

    def clusters_key(self, p: BalanceStageParams, pairs_key: str, levels: CentroidLevels | None) -> str:
        """What decides every row of gold.image_clusters besides its pair: the rank code,
        window, caps and seed, the centroids and the pairs' own work fingerprint."""
        b = p.balance
        return self.work_fingerprint(CLUSTERS, {
            "window": (b.sim_min, b.sim_max), "caps": b.caps, "seed": b.seed,
            "centroids": None if levels is None else levels.digest, "pairs": pairs_key})

    def store_pairs(self, ctx: Context, p: BalanceStageParams, emb: DataFrame, syn: DataFrame, dtype: str,
                    key: str) -> None:
        """gold.pair_vectors in units: only the pairs whose image and text the table does not
        hold under the same work fingerprint are encoded; a pair whose text changed or that
        left is deleted (jobs/core/units.py)."""
        images = emb.where("status = 'kept'").select("image_id", "embedding", "model")
        current = (syn.withColumn("text_hash", text_hash("syn_text"))
                   .join(images.select("image_id"), "image_id", "left_semi"))
        keys = ("image_id", "text_hash")
        start = ctx.table_version(PAIRS)
        if (ctx.store_has(PAIRS) and not ctx.full_refresh
                and ctx.table_property(PAIRS, WORK_FINGERPRINT_PROPERTY) == key):
            # Image vectors only beside the pairs to encode (those the table lacks at this
            # version, which write_in_units finds again): the units' source, kept while they
            # run, then holds vectors for the change only, and no unit joins the embeddings.
            stored = ctx.read(PAIRS, start).select(*keys)
            todo = without(current, stored, keys).join(images, "image_id")
            done = (current.join(stored, list(keys), "left_semi")
                    .withColumn("embedding", F.lit(None).cast("binary")).withColumn("model", F.lit(None).cast("string")))
            source = todo.unionByName(done)
        else:
            source = current.join(images, "image_id")
        parts = ctx.spark.sparkContext.defaultParallelism
        run_version = -1 if start is None else start

        def compute(unit: DataFrame, rows: int) -> DataFrame:
            tasks = min(parts * 4, rows // p.batch_size + 1)
            return pair_rows(unit, p.encoder, p.batch_size, dtype, p.balance.seed, run_version, tasks,
                             ctx.task_profile)
        write_in_units(ctx, PAIRS, source, keys, compute, key, ctx.unit_rows)

    def centroids(self, ctx: Context, p: BalanceStageParams, model: str | None, dim: int, sample: np.ndarray,
                  fraction: float, pairs_key: str) -> CentroidLevels | None:
        """The stored image centroids while they fit (jobs/lib/centroid_reuse.py), else a new fit,
        stored with its fingerprint and mean cosine. None: no pair in the window to fit."""
        fit_key = self.fit_key(p, pairs_key)
        levels = stored_fit(ctx, CENTROIDS, fit_key, p.refit, p.refit_drift, sample,
                            lambda: read_centroids(ctx.read, dim), "image centroids")
        if levels is not None:
            return levels
        # The driver fits k-means while the executors wait: give faiss their cores.
        centroids = fit_centroids(sample, fraction, p.balance, driver_threads())
        levels = None if centroids is None else CentroidLevels.from_arrays(centroids)
        fine = np.zeros((0, dim), np.float32) if levels is None else levels.arrays()[0]
        rows = [(i, fine[i].tobytes(), model) for i in range(len(fine))]
        fit = 1.0 if levels is None else mean_fit(sample, levels)
        ctx.write(CENTROIDS, ctx.spark.createDataFrame(rows, spec(CENTROIDS).schema),
                  extra_properties={WORK_FINGERPRINT_PROPERTY: fit_key, FIT_COSINE: repr(fit)})
        return levels

    def why_full(self, ctx: Context, levels: CentroidLevels | None, key: str) -> str | None:
        """Why gold.image_clusters is computed over all pairs; None: an increment will do."""
        if ctx.full_refresh:
            return "--full-refresh"
        if not ctx.store_has(CLUSTERS):
            return "first run"
        if levels is None:
            return "no image centroids"
        if ctx.table_property(CLUSTERS, WORK_FINGERPRINT_PROPERTY) != key:
            return "new centroids, or a change of its settings or code"
        if ctx.table_property(CLUSTERS, PAIRS_VERSION) is None:
            return "no pairs version recorded"
        return None

    def update_clusters(self, ctx: Context, p: BalanceStageParams, dim: int, dtype: str,
                        levels: CentroidLevels, pairs_version: int) -> dict[str, float]:
        """The increment: score the pairs encoded since the stored rows were computed (their
        files found by run_version's min/max), rank again the clusters they and the pairs that
        left change, merge the rows that changed and delete those of the pairs that left."""
        b = p.balance
        since = int(ctx.table_property(CLUSTERS, PAIRS_VERSION) or 0)
        fresh = ctx.read(PAIRS).where(F.col("run_version") >= since).select("image_id", "embedding", "text_vec")
        scored = fresh.mapInArrow(per_batch(scorer(dim, dtype, b, levels)), SCORED_DDL).localCheckpoint()
        changes, gone, touched = cluster_changes(ctx.read(CLUSTERS), scored, ctx.read(PAIRS).select("image_id"),
                                                 b.seed, b.caps, rank_tasks(ctx.spark))
        changes, gone = changes.localCheckpoint(), gone.localCheckpoint()
        n_changed, n_gone, n_touched, n_scored = changes.count(), gone.count(), touched.count(), scored.count()
        # Changed rows first, then the pairs that left, then the version: a run killed in
        # between finds the same work again (the pairs that left are still stored and the
        # version is the old one), and ranks the same clusters to the same rows.
        if n_changed:
            ctx.upsert(CLUSTERS, changes)
        if n_gone:
            ctx.delete_keys(CLUSTERS, "image_id", gone)
        if str(since) != str(pairs_version):
            ctx.set_properties(CLUSTERS, {PAIRS_VERSION: str(pairs_version)})
        ctx.say(f"[{self.name}] {CLUSTERS}: {n_scored} pair(s) scored, {n_gone} left, {n_touched} cluster(s) "
                f"ranked again, {n_changed} row(s) merged")
        return {"pairs_scored": n_scored, "pairs_left": n_gone, "clusters_ranked_again": n_touched,
                "rows_merged": n_changed}

    def run(self, ctx: Context, p: BalanceStageParams) -> list[Ledger]:
        emb = ctx.read("silver.image_embeddings")
        model = check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        b = p.balance
        syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
        n_in = syn.count()
        pairs_key = self.pairs_key(ctx, p, dtype)
        self.store_pairs(ctx, p, emb, syn, dtype, pairs_key)
        pairs = StoredRows(ctx, PAIRS, list(PAIR_COLUMNS), key="sample_key")
        sample, fraction = fit_sample(pairs, dim, dtype, b)
        levels = self.centroids(ctx, p, model, dim, sample, fraction, pairs_key)
        key = self.clusters_key(p, pairs_key, levels)
        pairs_version = ctx.table_version(PAIRS)
        why = self.why_full(ctx, levels, key)
        if why is None and levels is not None:
            done = self.update_clusters(ctx, p, dim, dtype, levels, int(pairs_version or 0))
        else:
            ctx.say(f"[{self.name}] {CLUSTERS}: every pair ranked ({why})")
            # Change data feed on: the rows an increment merges are what it shows.
            ctx.write(CLUSTERS, full_clusters(ctx, dim, dtype, b, levels, pairs),
                      extra_properties={WORK_FINGERPRINT_PROPERTY: key, PAIRS_VERSION: str(pairs_version)},
                      change_data_feed=True)
            done = {"pairs_scored": pairs.rows}
        written = ctx.read(CLUSTERS)
        row = written.agg(*[F.count(F.when(F.col("min_cap") <= c, 1)).alias(f"subset_{c}") for c in b.caps]).first()
        ctx.tracker.metrics({**row.asDict(), **done, "image_clusters": 0 if levels is None else levels.clusters,
                             "pairs_read_in_place": int(pairs.in_place)})
        return [ledger_from_status("balance_pairs", n_in, written)]


if __name__ == "__main__":
    sys.exit(Balance.main())

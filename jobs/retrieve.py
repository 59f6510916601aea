"""retrieve: image embeddings x clustered sentences -> gold.retrievals (top-k per image).

Coarse: each image goes to its top-p clusters (broadcast centroids, one faiss index per
worker: exact over one flat level, or inside the image's nearest coarse groups over two).
Fine: gold.sentence_clusters is stored sorted by cluster_id, so the sentences are never
shuffled: the driver plans buckets (one file's run of small clusters, or one slice of a
giant cluster) from a one-column pass, only the routed images are shuffled to their
buckets, and each bucket's task reads its sentence rows straight from its file and
searches every cluster exactly with one dense product (Arrow in and out, no pandas).
Merge: one window keeps the global top-k per image across probes and slices, and gives
images without a candidate their reason row.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.centroid_tables import read_levels
from realsyn.jobs.embedding_tables import check_same_model, embedding_meta, kept_vectors
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.shuffle_keys import partition_keys
from realsyn.jobs.stage import Context, InputError, Ledger, Stage, StageParams
from realsyn.jobs.stored_rows import open_file
from realsyn.jobs.units import WORK_FINGERPRINT_PROPERTY, work_fingerprint
from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.cluster_plan import Piece, plan_pieces
from realsyn.udfs.vector_codec import arrow_vectors
from realsyn.udfs.vector_search import search_clusters

ROUTED_DDL = "image_id string, embedding binary, cluster_id int, bucket long"
CANDIDATES_DDL = "image_id string, sentence_id string, score float"
CLUSTERS_VERSION = "realsyn.sentence_clusters_version"   # the gold.sentence_clusters the stored top-k saw


def route_fn(levels: CentroidLevels, dtype: str, probes: int, coarse_probes: int,
             routes: dict[int, list[int]], bucket_keys: np.ndarray):
    """mapInArrow body: one row per (image, probed cluster, bucket holding that cluster); the
    bucket column holds the bucket's shuffle key (see partition_keys)."""
    n_clusters = levels.clusters
    count = np.zeros(n_clusters + 1, np.int64)     # last slot: faiss's -1 (fewer centroids)
    for cid, bs in routes.items():
        count[cid] = len(bs)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    flat = bucket_keys[[b for cid in range(n_clusters) for b in routes.get(cid, [])]]

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype),
                                      levels, probes, coarse_probes)
            ids = ids.reshape(-1)
            n = count[ids]                           # clusters with no sentences route nowhere
            rows = np.repeat(np.repeat(np.arange(batch.num_rows), ids.size // batch.num_rows), n)
            first = np.repeat(start[ids] - (np.cumsum(n) - n), n)
            buckets = flat[first + np.arange(int(n.sum()))]
            take = pa.array(rows)
            yield pa.RecordBatch.from_arrays(
                [batch.column("image_id").take(take), batch.column("embedding").take(take),
                 pa.array(np.repeat(ids, n).astype(np.int32)), pa.array(buckets)],
                names=["image_id", "embedding", "cluster_id", "bucket"])
    return run


def read_pieces(pieces: list[Piece], dim: int, dtype: str):
    """A bucket's sentence rows, read from their file(s) with row-group pruning on cluster_id.

    Checks each cluster's row count against the plan (counted through Delta), so a table
    changed outside the cluster stage (deleted rows, rewritten files) fails loudly.
    """
    import pyarrow.parquet as pq
    parts = []
    for file in sorted({p.file for p in pieces}):
        mine = [p for p in pieces if p.file == file]
        lo, hi = min(p.cluster for p in mine), max(p.cluster for p in mine)
        path, filesystem = open_file(file)
        table = pq.read_table(path, columns=["cluster_id", "sentence_id", "embedding"], filesystem=filesystem,
                              filters=[("cluster_id", ">=", lo), ("cluster_id", "<=", hi)])
        clusters = table.column("cluster_id").to_numpy()
        take = []
        for p in mine:
            rows = np.flatnonzero(clusters == p.cluster)
            if len(rows) != p.rows:
                raise RuntimeError(f"gold.sentence_clusters file {file} holds {len(rows)} rows of cluster "
                                   f"{p.cluster}, the plan counted {p.rows}; the table changed outside "
                                   "the cluster stage: re-run cluster")
            take.append(rows[p.lo:p.hi])
        parts.append(table.take(pa.array(np.concatenate(take))))
    table = pa.concat_tables(parts)
    return (table.column("cluster_id").to_numpy(), table.column("sentence_id").combine_chunks(),
            arrow_vectors(table.column("embedding"), dim, dtype))


def search_fn(buckets: list[list[Piece]], bucket_keys: np.ndarray, dim: int, dtype: str, k: int,
              min_score: float):
    """grouped applyInArrow body: a bucket's images (streamed) against its sentences."""
    bucket_of = {int(key): b for b, key in enumerate(bucket_keys)}

    def run(key: tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        sentences = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if sentences is None:
                sentences = read_pieces(buckets[bucket_of[key[0].as_py()]], dim, dtype)
            s_clusters, s_ids, s_vecs = sentences
            rows, cols, scores = search_clusters(
                batch.column("cluster_id").to_numpy(), arrow_vectors(batch.column("embedding"), dim, dtype),
                s_clusters, s_vecs, k, min_score)
            yield pa.RecordBatch.from_arrays(
                [batch.column("image_id").take(pa.array(rows)), s_ids.take(pa.array(cols)),
                 pa.array(scores, pa.float32())], names=["image_id", "sentence_id", "score"])
    return run


def probes_fn(levels: CentroidLevels, dtype: str, probes: int, coarse_probes: int):
    """mapInArrow body: one row per (image, probed cluster), clusters without sentences too."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype), levels,
                                      probes, coarse_probes)
            rows = np.repeat(np.arange(batch.num_rows), ids.shape[1])
            yield pa.RecordBatch.from_arrays([batch.column("image_id").take(pa.array(rows)),
                                              pa.array(ids.reshape(-1).astype(np.int32))],
                                             names=["image_id", "cluster_id"])
    return run


def merge_top_k(candidates: DataFrame, image_ids: DataFrame, k: int, reason: str) -> DataFrame:
    """Global top-k per image in one window; an image with no candidate keeps one rank-0 row."""
    none = image_ids.select("image_id", F.lit(None).cast("string").alias("sentence_id"),
                            F.lit(None).cast("float").alias("score"))
    best = Window.partitionBy("image_id").orderBy(F.col("score").desc_nulls_last(), F.col("sentence_id"))
    ranked = candidates.unionByName(none).withColumn("rank", F.row_number().over(best))
    hit = F.col("sentence_id").isNotNull()
    return (ranked.where((hit & (F.col("rank") <= k)) | (~hit & (F.col("rank") == 1)))
            .select("image_id", F.when(hit, F.col("rank")).otherwise(0).cast("int").alias("rank"),
                    "sentence_id", F.col("score").cast("float"),
                    F.when(hit, None).otherwise(F.lit(reason)).cast("string").alias("reason")))


@dataclass(frozen=True)
class RetrieveParams(StageParams):
    top_k: int
    probes: int
    min_score: float
    max_cluster_rows: int
    coarse_probes: int

    @classmethod
    def from_config(cls, cfg) -> "RetrieveParams":
        r = "retrieval."
        return cls(cfg.get(r + "top_k"), cfg.get(r + "probes"), cfg.get(r + "min_score"),
                   cfg.get(r + "max_cluster_rows"), cfg.get(r + "coarse_probes"))


class Retrieve(Stage):
    name = "retrieve"
    description = "hierarchical top-k retrieval of realistic sentences per image"
    inputs = ("silver.image_embeddings", "silver.image_dedup", "silver.sentence_embeddings", "gold.text_centroids",
              "gold.text_coarse_centroids", "gold.sentence_clusters")
    outputs = ("gold.retrievals",)
    Params = RetrieveParams
    resources = TaskResources(cpus=1)   # routing (faiss, one thread) and dense numpy search on the CPU

    def work_key(self, ctx: Context, p: RetrieveParams, levels: CentroidLevels) -> str:
        """What decides every image's top-k besides the sentence rows: the search code and
        settings, the centroids, and the code and models of both embeddings."""
        return work_fingerprint(("realsyn.jobs.retrieve",), {
            "params": p, "centroids": levels.digest,
            "vectors": [ctx.table_property(t, WORK_FINGERPRINT_PROPERTY)
                        for t in ("silver.image_embeddings", "silver.sentence_embeddings")]})

    def images_to_search(self, ctx: Context, images: DataFrame, levels: CentroidLevels, dtype: str,
                         p: RetrieveParams, key: str) -> DataFrame | None:
        """Incremental: the kept images with no stored top-k, and those that probe a cluster
        whose sentences changed since the stored top-k was computed. None: search all (no
        stored result from the same search settings, centroids and vectors)."""
        table = "gold.retrievals"
        if ctx.full_refresh or not ctx.store_has(table) or ctx.table_property(table, WORK_FINGERPRINT_PROPERTY) != key:
            return None
        since = ctx.table_property(table, CLUSTERS_VERSION)
        if since is None:
            return None
        cur = ctx.read("gold.sentence_clusters").select("cluster_id", "sentence_id")
        try:
            old = ctx.read("gold.sentence_clusters", int(since)).select("cluster_id", "sentence_id")
            changed = {r[0] for r in cur.exceptAll(old).union(old.exceptAll(cur)).select("cluster_id")
                       .distinct().collect()}
        except Exception as err:   # the old version was vacuumed: search everything
            ctx.say(f"[{self.name}] sentence clusters of version {since} unreadable ({type(err).__name__}): "
                    "searching every image")
            return None
        stored = ctx.read(table).select("image_id").distinct()
        new = images.join(stored, "image_id", "left_anti").select("image_id")
        touched = (images.join(stored, "image_id", "left_semi")
                   .mapInArrow(probes_fn(levels, dtype, p.probes, p.coarse_probes), "image_id string, cluster_id int",
                               profile=ctx.task_profile)
                   .where(F.col("cluster_id").isin(sorted(changed))).select("image_id").distinct())
        todo = new.unionByName(touched).distinct().localCheckpoint()
        ctx.say(f"[{self.name}] {len(changed)} cluster(s) changed: {todo.count()} image(s) to search "
                f"({new.count()} new)")
        return todo

    def run(self, ctx: Context, p: RetrieveParams) -> list[Ledger]:
        spark = ctx.spark
        image_model = check_same_model(ctx.read, "silver.image_embeddings", "silver.sentence_embeddings")
        emb = ctx.read("silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        levels, models = read_levels(ctx.read, dim)
        if image_model and models and models != {image_model}:
            raise InputError(f"centroids were fitted on {sorted(models)} but images use {image_model}; "
                             "re-run cluster")
        images = kept_vectors(ctx.read, "silver.image_embeddings", "image_id").select("image_id", "embedding")
        n_images = images.count()
        k, probes, min_score = p.top_k, p.probes, p.min_score

        # One pass over the cluster_id column: which clusters each data file holds, how many rows.
        layout = [(r["file"], r["cluster_id"], r["count"]) for r in
                  ctx.read("gold.sentence_clusters").select("cluster_id", F.col("_metadata.file_path").alias("file"))
                  .groupBy("file", "cluster_id").count().collect()]
        parallelism = spark.sparkContext.defaultParallelism
        total = sum(n for _, _, n in layout)
        buckets, routes = plan_pieces(layout, p.max_cluster_rows,
                                      total // (4 * parallelism) + 1)

        key = self.work_key(ctx, p, levels)
        clusters_version = ctx.table_version("gold.sentence_clusters")
        todo = self.images_to_search(ctx, images, levels, dtype, p, key)
        searched = images if todo is None else images.join(todo, "image_id", "left_semi")
        # One task per bucket, exactly: AQE does not coalesce an explicit repartition (a
        # bucket is CPU-heavy for its bytes), and the keys avoid hash collisions.
        keys = partition_keys(spark, max(1, len(buckets)))
        routed = searched.mapInArrow(route_fn(levels, dtype, probes, p.coarse_probes, routes, keys),
                                   ROUTED_DDL, profile=ctx.task_profile)
        candidates = (routed.repartition(len(keys), "bucket").groupBy("bucket")
                      .applyInArrow(search_fn(buckets, keys, dim, dtype, k, min_score), CANDIDATES_DDL))
        reason = "no_candidate" if min_score <= -1 else "below_min_score"
        top = merge_top_k(candidates, searched.select("image_id"), k, reason)
        props = {"work_fingerprint": key, "sentence_clusters_version": str(clusters_version)}
        if todo is None:
            ctx.write("gold.retrievals", top, extra_properties=props)
        else:
            # Replace the searched images' rows and drop images no longer kept; the version
            # recorded last, so a run killed in between searches more next time, never less.
            gone = ctx.read("gold.retrievals").select("image_id").distinct().join(
                images.select("image_id"), "image_id", "left_anti")
            ctx.delete_keys("gold.retrievals", "image_id", todo.unionByName(gone).localCheckpoint())
            ctx.append("gold.retrievals", top)
            ctx.set_properties("gold.retrievals", props)
        counts = {r["reason"]: r["n"] for r in ctx.read("gold.retrievals")
                  .groupBy("reason").agg(F.countDistinct("image_id").alias("n")).collect()}
        hit = counts.pop(None, 0)
        ctx.tracker.metrics({"buckets": len(buckets), "clusters": len(routes)})
        return [Ledger("retrieval_images", n_images, hit, counts)]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["retrieve", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

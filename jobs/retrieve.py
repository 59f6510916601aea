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
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.centroid_tables import read_levels
from realsyn.jobs.lib.embedding_tables import check_same_model, embedding_meta, kept_vectors
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.lib.top_k_merge import merge_top_k
from realsyn.jobs.lib.shuffle_keys import partition_keys
from realsyn.jobs.core.stage import Context, InputError, Ledger, Stage, StageParams
from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY
from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.cluster_plan import plan_pieces
from realsyn.udfs.retrieve_search import CANDIDATES_DDL, ROUTED_DDL, probes_fn, route_fn, search_fn

CLUSTERS_VERSION = "sentence_clusters_version"   # the gold.sentence_clusters the stored top-k saw


@dataclass(frozen=True, kw_only=True)
class RetrieveParams(StageParams):
    SECTION = "retrieval"
    top_k: int
    probes: int
    min_score: float
    max_cluster_rows: int
    coarse_probes: int


class Retrieve(Stage):
    name = "retrieve"
    description = "hierarchical top-k retrieval of realistic sentences per image"
    inputs = ("silver.image_embeddings", "silver.image_dedup", "silver.sentence_embeddings", "gold.text_centroids",
              "gold.text_coarse_centroids", "gold.sentence_clusters")
    outputs = ("gold.retrievals",)
    Params = RetrieveParams
    resources = TaskResources(cpus=1)   # routing (faiss, one thread) and dense numpy search on the CPU
    work_code = {"gold.retrievals": ("realsyn.udfs.retrieve_search", "realsyn.jobs.lib.top_k_merge")}

    def work_key(self, ctx: Context, p: RetrieveParams, levels: CentroidLevels) -> str:
        """What decides every image's top-k besides the sentence rows: the search code and
        settings, the centroids, and the code and models of both embeddings."""
        return self.work_fingerprint("gold.retrievals", {
            "search": {k: getattr(p, k) for k in ("top_k", "probes", "min_score", "coarse_probes")},
            "centroids": levels.digest,
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
        props = {WORK_FINGERPRINT_PROPERTY: key, CLUSTERS_VERSION: str(clusters_version)}
        if todo is None:
            ctx.write("gold.retrievals", top, extra_properties=props)
        else:
            # Replace the searched images' rows and drop images no longer kept; the version
            # recorded last, so a run killed in between searches more next time, never less.
            gone = ctx.read("gold.retrievals").select("image_id").distinct().join(
                images.select("image_id"), "image_id", "left_anti")
            replaced = todo.unionByName(gone).localCheckpoint()
            if replaced.count():
                ctx.delete_keys("gold.retrievals", "image_id", replaced)
                ctx.append("gold.retrievals", top)
                ctx.set_properties("gold.retrievals", props)
            # else: every stored top-k still holds (diffed against the recorded clusters
            # version next time too); the table is left as it is.
        counts = {r["reason"]: r["n"] for r in ctx.read("gold.retrievals")
                  .groupBy("reason").agg(F.countDistinct("image_id").alias("n")).collect()}
        hit = counts.pop(None, 0)
        ctx.tracker.metrics({"buckets": len(buckets), "clusters": len(routes)})
        return [Ledger("retrieval_images", n_images, hit, counts)]


if __name__ == "__main__":
    sys.exit(Retrieve.main())

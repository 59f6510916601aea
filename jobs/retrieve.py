"""retrieve: image embeddings x clustered sentences -> gold.retrievals (top-k per image).

Coarse: each image goes to its top-p centroids (broadcast, faiss flat index per worker).
Fine: images and sentences meet per bucket (cogroup); a bucket is one slice of a big
cluster or a pack of small ones, and inside it each cluster is searched exactly.
Merge: a window keeps the global top-k per image across probes and slices.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.cluster import assign_fn, embedding_meta
from realsyn.jobs.embed import check_same_model
from realsyn.jobs.stage import Context, InputError, Ledger, Stage
from realsyn.udfs.clip_encoder import from_bytes
from realsyn.udfs.cluster_plan import plan_buckets
from realsyn.udfs.vector_search import top_k

CANDIDATES_DDL = "image_id string, sentence_id string, score float"


def search_bucket(dim: int, dtype: str, k: int, min_score: float):
    """cogroup body: exact top-k of each image within its own cluster's sentences."""
    def run(images: pd.DataFrame, sentences: pd.DataFrame) -> pd.DataFrame:
        out = []
        if images.empty or sentences.empty:
            return pd.DataFrame(out, columns=["image_id", "sentence_id", "score"])
        for cid, imgs in images.groupby("cluster_id", sort=True):
            sents = sentences[sentences["cluster_id"] == cid]
            if sents.empty:
                continue
            q = from_bytes(imgs["embedding"].tolist(), dim, dtype)
            c = from_bytes(sents["embedding"].tolist(), dim, dtype)
            scores, idx = top_k(q, c, k)
            ids = sents["sentence_id"].to_numpy()
            for row, image_id in enumerate(imgs["image_id"].to_numpy()):
                for s, j in zip(scores[row], idx[row]):
                    if s >= min_score:
                        out.append((image_id, ids[j], float(s)))
        return pd.DataFrame(out, columns=["image_id", "sentence_id", "score"])
    return run


def merge_top_k(candidates: DataFrame, k: int) -> DataFrame:
    best = Window.partitionBy("image_id").orderBy(F.col("score").desc(), F.col("sentence_id"))
    return (candidates.dropDuplicates(["image_id", "sentence_id"])
            .withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= k))


class Retrieve(Stage):
    name = "retrieve"
    description = "hierarchical top-k retrieval of realistic sentences per image"
    inputs = ("silver.image_embeddings", "silver.sentence_embeddings", "gold.text_centroids",
              "gold.sentence_clusters")
    outputs = ("gold.retrievals",)
    config_sections = ("retrieval", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg, spark = ctx.cfg, ctx.spark
        check_same_model(ctx.read, "silver.image_embeddings", "silver.sentence_embeddings")
        centroid_model = ctx.read("gold.text_centroids").select("model").first()
        image_model = check_same_model(ctx.read, "silver.image_embeddings")
        if centroid_model and image_model and centroid_model[0] != image_model:
            raise InputError(f"centroids were fitted on {centroid_model[0]} but images use {image_model}; "
                             "re-run cluster")
        emb = ctx.read("silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        images = emb.where("status = 'kept'").select("image_id", "embedding")
        n_images = images.count()
        k, probes, min_score = cfg.get("retrieval.top_k"), cfg.get("retrieval.probes"), cfg.get("retrieval.min_score")
        centroids = ctx.read("gold.text_centroids").orderBy("cluster_id").select("centroid").collect()
        blob = b"".join(r[0] for r in centroids)
        routed = images.mapInPandas(assign_fn(blob, dim, dtype, probes, cfg.profile == "gpu"),
                                    "image_id string, embedding binary, cluster_id int, probe int")

        sentences = ctx.read("gold.sentence_clusters")
        sizes = {r["cluster_id"]: r["count"] for r in sentences.groupBy("cluster_id").count().collect()}
        parallelism = spark.sparkContext.defaultParallelism
        target = max(1, sum(sizes.values()) // (4 * parallelism) + 1)
        plan = plan_buckets(sizes, cfg.get("retrieval.max_cluster_rows"), target)
        plan_df = F.broadcast(spark.createDataFrame(
            [(c, b, s) for c, (b, s) in plan.items()] or [(-1, 0, 1)], "cluster_id int, first_bucket int, n_sub int"))
        sent_b = (sentences.join(plan_df, "cluster_id")
                  # the same key type on both sides, or the cogroup does not co-partition them
                  .withColumn("bucket", (F.col("first_bucket") + F.pmod(F.xxhash64("sentence_id"), F.col("n_sub")))
                              .cast("int"))
                  .select("bucket", "cluster_id", "sentence_id", "embedding"))
        img_b = (routed.join(plan_df, "cluster_id")
                 .withColumn("bucket", F.explode(F.sequence(F.col("first_bucket"),
                                                            F.col("first_bucket") + F.col("n_sub") - 1)))
                 .select("bucket", "cluster_id", "image_id", "embedding"))
        candidates = (img_b.groupBy("bucket").cogroup(sent_b.groupBy("bucket"))
                      .applyInPandas(search_bucket(dim, dtype, k, min_score), CANDIDATES_DDL))
        top = merge_top_k(candidates, k).select(
            "image_id", F.col("rank").cast("int"), "sentence_id", F.col("score").cast("float"),
            F.lit(None).cast("string").alias("reason"))
        misses = (images.select("image_id").join(top.select("image_id").distinct(), "image_id", "left_anti")
                  .select("image_id", F.lit(0).alias("rank"), F.lit(None).cast("string").alias("sentence_id"),
                          F.lit(None).cast("float").alias("score"),
                          F.lit("no_candidate" if min_score <= -1 else "below_min_score").alias("reason")))
        ctx.write("gold.retrievals", top.unionByName(misses))
        written = ctx.tables.read("gold.retrievals")
        hit = written.where("rank >= 1").select("image_id").distinct().count()
        missed = {r["reason"]: r["count"] for r in written.where("rank = 0").groupBy("reason").count().collect()}
        ctx.tracker.metrics({"buckets": len(set(b for b, _ in plan.values())), "clusters": len(sizes)})
        return [Ledger("retrieval_images", n_images, hit, missed)]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["retrieve", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

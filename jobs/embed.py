"""embed: silver.images + silver.sentences (kept) -> CLIP embeddings, one encoder for both."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.embedding_tables import check_same_model
from realsyn.jobs.models import encoder_spec, weights_identity
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.session import session_conf
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.jobs.vector_sample import collect_vectors, hash_sample
from realsyn.udfs.centroid_assign import assign_fn
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_images_arrow, embed_texts_arrow
from realsyn.udfs.semantic_dedup import cluster_pairs_fn
from realsyn.udfs.union_find import representatives
from realsyn.udfs.vector_search import fit_kmeans


@dataclass(frozen=True)
class DedupParams:
    """Semantic dedup: k-means granularity and the k-means fit (shared keys with retrieval)."""
    points_per_cluster: int
    kmeans_sample: int
    kmeans_iters: int
    seed: int

    @classmethod
    def from_config(cls, cfg) -> "DedupParams":
        return cls(cfg.get("embedding.dedup_points_per_cluster"), cfg.get("retrieval.kmeans_sample"),
                   cfg.get("retrieval.kmeans_iters"), cfg.get("run.seed"))


@dataclass(frozen=True)
class EmbedParams(StageParams):
    encoder: EncoderSpec
    batch_size: int
    storage_dtype: str
    image_dedup_cosine: float
    sentence_dedup_cosine: float
    dedup: DedupParams

    @classmethod
    def from_config(cls, cfg) -> "EmbedParams":
        return cls(encoder_spec(cfg), cfg.get("embedding.batch_size"), cfg.get("embedding.storage_dtype"),
                   cfg.get("images.semantic_dedup_cosine"), cfg.get("sentences.semantic_dedup_cosine"),
                   DedupParams.from_config(cfg))


@contextmanager
def arrow_batch_rows(spark, rows: int):
    """Arrow batches of about one model batch while the block runs: the JVM then streams
    batches to the Python worker while it encodes the previous one, instead of handing it
    a whole partition (10,000 rows by default) at once."""
    with session_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(max(1, rows))):
        yield


def spread(df: DataFrame, parallelism: int, n_rows: int, batch: int) -> DataFrame:
    """Enough equal tasks to keep every core busy, without shuffling rows needlessly:
    the input keeps its partitions when there are at least as many as cores and they fill
    the cores evenly (a multiple of them, or many); otherwise round-robin repartition."""
    want = max(1, min(parallelism, n_rows // batch + 1))
    have = df.rdd.getNumPartitions()
    if have >= want and (have % want == 0 or have >= 4 * want):
        return df
    return df.repartition(want)


class Embed(Stage):
    name = "embed"
    description = "CLIP image and text embeddings"
    inputs = ("silver.images", "silver.sentences")  # kept rows only
    outputs = ("silver.image_embeddings", "silver.sentence_embeddings")
    Params = EmbedParams
    resources = TaskResources(cpus="embedding.torch_threads", gpus="resources.clip_task_gpus")

    def weights(self, p: EmbedParams) -> dict[str, str]:
        return weights_identity({"clip": p.encoder.weights})

    def run(self, ctx: Context, p: EmbedParams) -> list[Ledger]:
        spec, size, dtype = p.encoder, p.batch_size, p.storage_dtype
        parts = ctx.spark.sparkContext.defaultParallelism
        images = ctx.read("silver.images").where("status = 'kept'").select("image_id", "bytes")
        n_images = images.count()
        image_vecs = (spread(images, parts, n_images, size)
                      .mapInArrow(embed_images_arrow(spec, size, dtype), OUTPUT_DDL.format(key="image_id")))
        with arrow_batch_rows(ctx.spark, size):
            ctx.write("silver.image_embeddings", image_vecs)
        sentences = ctx.read("silver.sentences").where("status = 'kept'").select("sentence_id", "text")
        n_sentences = sentences.count()
        sentence_vecs = (sentences.repartition(max(1, min(parts * 4, n_sentences // size + 1)))
                         .mapInArrow(embed_texts_arrow(spec, size, dtype), OUTPUT_DDL.format(key="sentence_id")))
        with arrow_batch_rows(ctx.spark, size):
            ctx.write("silver.sentence_embeddings", sentence_vecs)
        check_same_model(ctx.read, "silver.image_embeddings", "silver.sentence_embeddings")
        area = ctx.read("silver.images").where("status = 'kept'").groupBy("image_id").agg(
            F.max(F.col("width") * F.col("height")).alias("area"))
        dups = {"images": semantic_dedup(ctx, "silver.image_embeddings", "image_id",
                                         p.image_dedup_cosine, area, p.dedup),
                "sentences": semantic_dedup(ctx, "silver.sentence_embeddings", "sentence_id",
                                            p.sentence_dedup_cosine, None, p.dedup)}
        ctx.tracker.metrics({f"semantic_duplicates.{k}": v for k, v in dups.items()})
        return [ledger_from_status("image_embeddings", n_images, ctx.read("silver.image_embeddings")),
                ledger_from_status("sentence_embeddings", n_sentences, ctx.read("silver.sentence_embeddings"))]


MAX_DEDUP_PAIRS = 20_000_000


def semantic_dedup(ctx: Context, table: str, key: str, threshold: float, area: DataFrame | None,
                   p: DedupParams) -> int:
    """k-means, pairs above the cosine threshold inside each cluster, union-find across all
    pairs; one representative per component stays kept (largest image / first sentence id).
    Rewrites the table's status; returns how many rows became duplicate_semantic."""
    df = ctx.read(table)
    kept = df.where("status = 'kept'").select(key, "embedding")
    n = kept.count()
    if n < 2:
        return 0
    dim, dtype = df.where("status = 'kept'").select("dim", "dtype").first()
    k = max(1, n // p.points_per_cluster)
    fraction = min(1.0, p.kmeans_sample / n)
    _, sample = collect_vectors(hash_sample(kept, key, fraction, p.seed), key, dim, dtype)
    centroids = fit_kmeans(sample, k, p.kmeans_iters, p.seed)
    assigned = kept.mapInPandas(assign_fn(centroids.astype("<f4").tobytes(), dim, dtype, 1),
                                f"{key} string, embedding binary, cluster_id int, probe int")
    pairs = (assigned.groupBy("cluster_id")
             .applyInPandas(cluster_pairs_fn(key, dim, dtype, threshold), "x string, y string"))
    if area is not None:
        a = area.select(F.col("image_id").alias("k"), (-F.col("area")).alias("r"))
        pairs = (pairs.join(a.toDF("x", "rx"), "x", "left").join(a.toDF("y", "ry"), "y", "left"))
    else:
        pairs = pairs.withColumn("rx", F.lit(0)).withColumn("ry", F.lit(0))
    rows = pairs.limit(MAX_DEDUP_PAIRS + 1).toArrow().to_pylist()
    if len(rows) > MAX_DEDUP_PAIRS:
        raise RuntimeError(f"{table}: more than {MAX_DEDUP_PAIRS} semantic duplicate pairs; raise the threshold")
    if not rows:
        return 0
    rank = {}
    for r in rows:
        rank[r["x"]], rank[r["y"]] = r["rx"] or 0, r["ry"] or 0
    mapping = representatives([(r["x"], r["y"]) for r in rows], rank)
    dup = ctx.spark.createDataFrame([(m, rep) for m, rep in mapping.items() if m != rep], f"{key} string, rep string")
    updated = (df.join(F.broadcast(dup), key, "left")
               .withColumn("status", F.when(F.col("rep").isNotNull(), "rejected").otherwise(F.col("status")))
               .withColumn("reason", F.when(F.col("rep").isNotNull(), "duplicate_semantic").otherwise(F.col("reason")))
               .drop("rep"))
    ctx.write(table, updated.localCheckpoint())  # cut the lineage: the table is read and rewritten
    return dup.count()


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["embed", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

"""extract_images: bronze.documents -> silver.images (the global image pool).

image slots -> distinct URLs -> fetch + decode (mapInPandas) -> quality filter (SQL)
-> exact dedup (content hash) -> perceptual dedup (pHash bands + union-find).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.fetch import FetchSettings
from realsyn.udfs.funnel import IMAGE_STAGES, log_funnel
from realsyn.udfs.image_decode import DecodeLimits
from realsyn.udfs.image_pool import OUTPUT_DDL, partition_fn
from realsyn.udfs.union_find import representatives

MAX_DEDUP_PAIRS = 20_000_000


def image_slots(docs: DataFrame) -> DataFrame:
    """One row per image slot: url, doc_id and the slot's alt text."""
    meta_type = "array<map<string,string>>"
    return (docs.select("doc_id", F.posexplode("images").alias("pos", "url"),
                        F.from_json("metadata", meta_type).alias("meta"))
            .where(F.col("url").isNotNull())
            .select("doc_id", F.trim("url").alias("url"),
                    F.expr("try_element_at(meta, pos + 1)['alt_text']").alias("alt_text")))


def distinct_urls(slots: DataFrame) -> DataFrame:
    """One row per URL (its first slot by doc_id, then alt text) and how many slots link it."""
    first = F.min(F.struct("doc_id", "alt_text")).alias("first")
    return (slots.withColumn("url_id", F.sha2("url", 256))
            .groupBy("url_id").agg(F.min("url").alias("url"), first, F.count("*").alias("n_slots"))
            .select("url", "first.doc_id", "first.alt_text", "url_id", "n_slots"))


def quality_reason(min_side: int, max_ratio: float):
    """Shorter side >= min_side and aspect ratio within [1/max_ratio, max_ratio], in SQL."""
    return (F.when(F.least("width", "height") < min_side, "too_small")
            .when(F.greatest("width", "height") > F.lit(max_ratio) * F.least("width", "height"),
                  "bad_aspect_ratio"))


def band_columns(max_hamming: int) -> list:
    """Split the 64-bit hash into max_hamming+1 bands: near pairs share at least one band."""
    n = max_hamming + 1
    widths = [64 // n + (1 if i < 64 % n else 0) for i in range(n)]
    cols, shift = [], 0
    for i, w in enumerate(widths):
        mask = (1 << w) - 1
        cols.append(F.struct(F.lit(i).alias("band"),
                             (F.shiftrightunsigned("phash", shift).bitwiseAND(F.lit(mask))).alias("value")))
        shift += w
    return cols


def near_duplicate_pairs(images: DataFrame, max_hamming: int) -> DataFrame:
    banded = images.select("image_id", "phash", F.explode(F.array(*band_columns(max_hamming))).alias("b"))
    a, b = banded.alias("a"), banded.alias("b")
    return (a.join(b, (F.col("a.b") == F.col("b.b")) & (F.col("a.image_id") < F.col("b.image_id")))
            .where(F.bit_count(F.col("a.phash").bitwiseXOR(F.col("b.phash"))) <= max_hamming)
            .select(F.col("a.image_id").alias("x"), F.col("b.image_id").alias("y")).distinct())


@dataclass(frozen=True)
class ExtractImagesParams(StageParams):
    fetch: FetchSettings
    decode: DecodeLimits
    min_side_px: int
    max_aspect_ratio: float
    phash_max_hamming: int

    @classmethod
    def from_config(cls, cfg) -> "ExtractImagesParams":
        decode = DecodeLimits(cfg.get("images.max_pixels"), cfg.get("images.max_jpeg_scans"),
                              tuple(cfg.get("images.formats")))
        return cls(FetchSettings.from_conf(cfg.section("fetch")), decode,
                   cfg.get("images.min_side_px"), cfg.get("images.max_aspect_ratio"),
                   cfg.get("images.phash_max_hamming"))


class ExtractImages(Stage):
    name = "extract_images"
    description = "fetch, decode, filter and dedup every image URL"
    inputs = ("bronze.documents",)
    outputs = ("silver.images",)
    Params = ExtractImagesParams
    resources = TaskResources(cpus=1)   # fetch + decode: I/O-bound threads (fetch.concurrency_per_task), one core

    def run(self, ctx: Context, p: ExtractImagesParams) -> list[Ledger]:
        spark = ctx.spark
        slots = image_slots(ctx.read("bronze.documents"))
        # One job counts slots and URLs; the URL list is cached for the fetch.
        urls = distinct_urls(slots).persist(StorageLevel.MEMORY_AND_DISK)
        counts = urls.agg(F.count("*").alias("urls"), F.sum("n_slots").alias("slots")).first()
        n_urls, n_slots = counts["urls"], counts["slots"] or 0
        parts = max(spark.sparkContext.defaultParallelism, n_urls // 500 + 1)
        fetched = (urls.repartition(parts, "url_id").select("url_id", "url")
                   .mapInPandas(partition_fn(p.fetch, p.decode), OUTPUT_DDL))
        # Fetching is the expensive, non-repeatable part: cached, computed once by the first
        # action on the (also cached) pool below.
        fetched = fetched.persist(StorageLevel.MEMORY_AND_DISK)
        pool = urls.drop("n_slots").join(fetched, "url_id")
        pool = pool.withColumn("reason", F.coalesce(
            F.col("fetch_reason"), quality_reason(p.min_side_px, p.max_aspect_ratio)))
        first_copy = Window.partitionBy("image_id").orderBy("url_id")
        pool = pool.withColumn("copy", F.when(F.col("reason").isNull(), F.row_number().over(first_copy)))
        pool = pool.withColumn("reason", F.when(F.col("copy") > 1, "duplicate_exact").otherwise(F.col("reason")))
        pool = pool.persist(StorageLevel.MEMORY_AND_DISK)

        candidates = pool.where(F.col("reason").isNull()).select("image_id", "phash", "width", "height")
        pairs = near_duplicate_pairs(candidates, p.phash_max_hamming).persist()
        n_pairs = pairs.count()
        if n_pairs > MAX_DEDUP_PAIRS:
            raise RuntimeError(f"{n_pairs} near-duplicate pairs exceed {MAX_DEDUP_PAIRS}; lower images.phash_max_hamming")
        rep = self._representatives(spark, pairs, candidates)
        pool = (pool.join(F.broadcast(rep), "image_id", "left")
                .withColumn("reason", F.when(F.col("reason").isNull() & F.col("rep").isNotNull()
                                             & (F.col("rep") != F.col("image_id")), "duplicate_perceptual")
                            .otherwise(F.col("reason")))
                .withColumn("duplicate_of", F.when(F.col("reason") == "duplicate_perceptual", F.col("rep"))
                            .when(F.col("reason") == "duplicate_exact", F.col("image_id"))))
        out = pool.select(
            "url_id", "url", "doc_id", "alt_text", "image_id",
            F.when(F.col("reason").isNull(), F.col("bytes")).alias("bytes"),
            F.col("width").cast("int"), F.col("height").cast("int"), "format", F.col("phash").cast("long"),
            F.col("http_status").cast("int"), "duplicate_of",
            F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason")
        ctx.write("silver.images", out)
        for df in (fetched, pool, pairs, urls):
            df.unpersist()
        ledger = ledger_from_status("images", n_slots, ctx.read("silver.images"))
        ledger.rejected["duplicate_url"] = n_slots - n_urls
        ctx.tracker.metrics({"images.near_duplicate_pairs": n_pairs})
        log_funnel(ctx.tracker, ledger, IMAGE_STAGES, "image slots", "extract_images: rows left after each filter")
        return [ledger]

    @staticmethod
    def _representatives(spark, pairs: DataFrame, candidates: DataFrame) -> DataFrame:
        """Union-find on the driver over the (small) pair list; the largest image represents."""
        area = candidates.select("image_id", (F.col("width") * F.col("height")).alias("area"))
        with_area = (pairs.join(area.toDF("x", "ax"), "x").join(area.toDF("y", "ay"), "y"))
        # One Arrow collect (toLocalIterator would run a job per partition).
        df = with_area.toPandas()
        edges = list(zip(df["x"], df["y"]))
        rank = dict(zip(df["x"], -df["ax"].astype("int64")))
        rank.update(zip(df["y"], -df["ay"].astype("int64")))
        mapping = representatives(edges, rank)
        return spark.createDataFrame(list(mapping.items()) or [], "image_id string, rep string")


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["extract_images", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

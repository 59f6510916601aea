"""extract_images: bronze.documents -> silver.images (the global image pool).

image slots -> distinct URLs -> fetch + decode (mapInPandas, committed in units to
silver.image_fetches, only URLs not fetched before) -> quality filter (SQL)
-> exact dedup (content hash) -> perceptual dedup (pHash bands + connected components).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.perceptual_dedup import perceptual_representatives
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.jobs.units import write_in_units
from realsyn.udfs.fetch import FetchSettings
from realsyn.udfs.funnel import IMAGE_STAGES, log_funnel
from realsyn.udfs.image_decode import DecodeLimits
from realsyn.udfs.image_pool import OUTPUT_DDL, partition_fn


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


@dataclass(frozen=True)
class ExtractImagesParams(StageParams):
    fetch: FetchSettings
    decode: DecodeLimits
    min_side_px: int
    max_aspect_ratio: float
    phash_max_hamming: int
    phash_bucket_max: int

    @classmethod
    def from_config(cls, cfg) -> "ExtractImagesParams":
        decode = DecodeLimits(cfg.get("images.max_pixels"), cfg.get("images.max_jpeg_scans"),
                              tuple(cfg.get("images.formats")))
        return cls(FetchSettings.from_conf(cfg.section("fetch")), decode,
                   cfg.get("images.min_side_px"), cfg.get("images.max_aspect_ratio"),
                   cfg.get("images.phash_max_hamming"), cfg.get("images.phash_bucket_max"))


class ExtractImages(Stage):
    name = "extract_images"
    description = "fetch, decode, filter and dedup every image URL"
    inputs = ("bronze.documents",)
    outputs = ("silver.image_fetches", "silver.images")
    Params = ExtractImagesParams
    resources = TaskResources(cpus=1)   # fetch + decode: I/O-bound threads (fetch.concurrency_per_task), one core
    unit_rows = "units.fetch_rows"
    work_code = {"silver.image_fetches": ("realsyn.udfs.image_pool",)}

    def fetch_key(self, p: ExtractImagesParams) -> str:
        """What decides a fetch outcome: the fetch and decode code and settings (not the
        filters and dedup after it, so changing those refetches nothing)."""
        return self.work_fingerprint("silver.image_fetches", {"fetch": p.fetch, "decode": p.decode})

    def run(self, ctx: Context, p: ExtractImagesParams) -> list[Ledger]:
        spark = ctx.spark
        slots = image_slots(ctx.read("bronze.documents"))
        urls = distinct_urls(slots).persist(StorageLevel.MEMORY_AND_DISK)
        counts = urls.agg(F.count("*").alias("urls"), F.sum("n_slots").alias("slots")).first()
        n_urls, n_slots = counts["urls"], counts["slots"] or 0

        def fetch(unit: DataFrame, rows: int) -> DataFrame:
            parts = max(spark.sparkContext.defaultParallelism, rows // 500 + 1)
            return (unit.repartition(parts, "url_id")
                    .mapInPandas(partition_fn(p.fetch, p.decode), OUTPUT_DDL, profile=ctx.task_profile))

        # Fetching is the expensive, non-repeatable part: committed in units, and only the
        # URLs without an outcome under the same fetch settings are fetched.
        write_in_units(ctx, "silver.image_fetches", urls.select("url_id", "url"), "url_id", fetch,
                       self.fetch_key(p), ctx.unit_rows)
        fetched = ctx.read("silver.image_fetches")
        pool = urls.drop("n_slots").join(fetched, "url_id")
        pool = pool.withColumn("reason", F.coalesce(
            F.col("fetch_reason"), quality_reason(p.min_side_px, p.max_aspect_ratio)))
        first_copy = Window.partitionBy("image_id").orderBy("url_id")
        pool = pool.withColumn("copy", F.when(F.col("reason").isNull(), F.row_number().over(first_copy)))
        pool = pool.withColumn("reason", F.when(F.col("copy") > 1, "duplicate_exact").otherwise(F.col("reason")))
        pool = pool.persist(StorageLevel.MEMORY_AND_DISK)

        candidates = pool.where(F.col("reason").isNull()).select("image_id", "phash", "width", "height")
        rep = perceptual_representatives(candidates, p.phash_max_hamming, p.phash_bucket_max).localCheckpoint()
        pool = (pool.join(rep, "image_id", "left")
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
        for df in (pool, urls):
            df.unpersist()
        ledger = ledger_from_status("images", n_slots, ctx.read("silver.images"))
        ledger.rejected["duplicate_url"] = n_slots - n_urls
        log_funnel(ctx.tracker, ledger, IMAGE_STAGES, "image slots", "extract_images: rows left after each filter")
        return [ledger]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["extract_images", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

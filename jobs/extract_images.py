"""extract_images: bronze.documents -> silver.images (the global image pool).

image slots -> distinct URLs -> fetch (mapInPandas, committed in units to
silver.image_fetches, only URLs with no response yet: what the web said is kept, not
recomputed) -> decode the stored bytes (committed in units to silver.image_decodes, one row
per distinct content, only contents not decoded under the same decoder and limits) ->
quality filter (SQL) -> exact dedup (content hash) -> perceptual dedup (pHash bands +
connected components).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from realsyn.jobs.lib.image_decodes import decoded_rows
from realsyn.jobs.lib.keep_rank import image_rank
from realsyn.jobs.lib.perceptual_groups import full_groups, group_changes, needs_full
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import nested
from realsyn.jobs.core.units import WORK_FINGERPRINT_PROPERTY, write_in_units
from realsyn.udfs.fetch import REQUEST_RULES_VERSION, FetchSettings
from realsyn.udfs.funnel import IMAGE_STAGES, log_funnel
from realsyn.udfs.fetch_rows import FETCH_DDL, fetch_fn
from realsyn.udfs.image_decode import DecodeLimits


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


@dataclass(frozen=True, kw_only=True)
class ExtractImagesParams(StageParams):
    SECTION = "images"
    fetch: FetchSettings = nested(FetchSettings)
    decode: DecodeLimits = nested(DecodeLimits)
    min_side_px: int
    max_aspect_ratio: float
    phash_max_hamming: int
    phash_bucket_max: int


class ExtractImages(Stage):
    name = "extract_images"
    description = "fetch, decode, filter and dedup every image URL"
    inputs = ("bronze.documents",)
    outputs = ("silver.image_fetches", "silver.image_decodes", "silver.image_groups", "silver.images")
    Params = ExtractImagesParams
    resources = TaskResources(cpus=1)   # fetch + decode: I/O-bound threads (fetch.concurrency_per_task), one core
    unit_rows = "units.fetch_rows"
    # A fetch is an observation, not a function of the code: its key is what changes the
    # request itself. Decoding is a function of the stored bytes, its code and limits.
    work_code = {"silver.image_fetches": (), "silver.image_decodes": ("realsyn.jobs.lib.image_decodes",),
                 "silver.image_groups": ("realsyn.jobs.lib.perceptual_groups",)}

    def fetch_key(self, p: ExtractImagesParams) -> str:
        """What decides the response a URL gets: the user agent, the opt-out policy and the
        address policy. Timeouts, retries and size caps decide only whether a response
        arrives (`realsyn refetch` asks again); decoding, filters and dedup come after."""
        return self.work_fingerprint("silver.image_fetches", {
            "user_agent": p.fetch.user_agent, "honour_opt_out": p.fetch.honour_opt_out, "policy": p.fetch.policy,
            "rules": REQUEST_RULES_VERSION})

    def decode_key(self, p: ExtractImagesParams) -> str:
        """What decides a content's decode: the decoder's code, its limits and the size cap."""
        return self.work_fingerprint("silver.image_decodes", {"decode": p.decode, "max_bytes": p.fetch.max_bytes})

    def groups_key(self, p: ExtractImagesParams) -> str:
        """What decides the perceptual groups besides the candidates: the grouping code and
        its settings."""
        return self.work_fingerprint("silver.image_groups", {"max_hamming": p.phash_max_hamming,
                                                             "bucket_max": p.phash_bucket_max})

    def update_groups(self, ctx: Context, p: ExtractImagesParams, candidates: DataFrame) -> DataFrame:
        """silver.image_groups brought up to the candidates: only new candidates compared, and
        only the groups they touch rewritten, when nothing left or changed since the stored
        groups; every group computed again otherwise. Returns (image_id, rep)."""
        table, key = "silver.image_groups", self.groups_key(p)
        cands = candidates.select("image_id", "phash").join(image_rank(candidates), "image_id").localCheckpoint()
        reuse = (not ctx.full_refresh and ctx.store_has(table)
                 and ctx.table_property(table, WORK_FINGERPRINT_PROPERTY) == key)
        if reuse and not needs_full(ctx.read(table), cands):
            changes = group_changes(ctx.read(table), cands, p.phash_max_hamming, p.phash_bucket_max).localCheckpoint()
            ctx.say(f"[{self.name}] perceptual groups updated: {changes.count()} row(s) new or regrouped")
            ctx.upsert(table, changes)
        else:
            ctx.write(table, full_groups(cands, p.phash_max_hamming, p.phash_bucket_max),
                      extra_properties={WORK_FINGERPRINT_PROPERTY: key})
        return ctx.read(table).select("image_id", "rep")

    def run(self, ctx: Context, p: ExtractImagesParams) -> list[Ledger]:
        spark = ctx.spark
        slots = image_slots(ctx.read("bronze.documents"))
        urls = distinct_urls(slots).persist(StorageLevel.MEMORY_AND_DISK)
        counts = urls.agg(F.count("*").alias("urls"), F.sum("n_slots").alias("slots")).first()
        n_urls, n_slots = counts["urls"], counts["slots"] or 0

        parallelism = spark.sparkContext.defaultParallelism

        def fetch(unit: DataFrame, rows: int) -> DataFrame:
            # One task per slot: each streams its URLs with a full window of requests and
            # waits for its slowest responses once (udfs/fetch_rows.py bounds its memory).
            return (unit.repartition(parallelism, "url_id")
                    .mapInPandas(fetch_fn(p.fetch), FETCH_DDL, profile=ctx.task_profile))

        # Fetching is the expensive, non-repeatable part: committed in units, and only the
        # URLs without a response under the same request settings are fetched. The first
        # unit fills every task's request window.
        write_in_units(ctx, "silver.image_fetches", urls.select("url_id", "url"), "url_id", fetch,
                       self.fetch_key(p), ctx.unit_rows, first_rows=p.fetch.concurrency * parallelism)
        fetched = ctx.read("silver.image_fetches")
        contents = fetched.where(F.col("image_id").isNotNull())

        def decode(unit: DataFrame, rows: int) -> DataFrame:
            return decoded_rows(unit, contents, p.decode, p.fetch.max_bytes, max(parallelism, rows // 500 + 1),
                                ctx.task_profile)

        # Each distinct content decoded once; again only when the decoder or its limits change.
        write_in_units(ctx, "silver.image_decodes", contents.select("image_id").distinct(), "image_id", decode,
                       self.decode_key(p), ctx.unit_rows)
        decoded = ctx.read("silver.image_decodes")
        # The pool never needs the bytes (silver.images holds none): left out before the
        # joins and the cache, which would otherwise carry every image through each shuffle.
        pool = urls.drop("n_slots").join(fetched.drop("bytes"), "url_id").join(decoded, "image_id", "left")
        pool = pool.withColumn("reason", F.coalesce(
            F.col("fetch_reason"), F.col("decode_reason"), quality_reason(p.min_side_px, p.max_aspect_ratio)))
        first_copy = Window.partitionBy("image_id").orderBy("url_id")
        pool = pool.withColumn("copy", F.when(F.col("reason").isNull(), F.row_number().over(first_copy)))
        pool = pool.withColumn("reason", F.when(F.col("copy") > 1, "duplicate_exact").otherwise(F.col("reason")))
        # Kept by name so it is the one unpersisted: a cached plan left behind would answer
        # later reads of the replaced fetch or decode tables in this session with stale rows.
        cached = pool = pool.persist(StorageLevel.MEMORY_AND_DISK)

        candidates = pool.where(F.col("reason").isNull()).select("image_id", "phash", "width", "height")
        rep = self.update_groups(ctx, p, candidates)
        pool = (pool.join(rep, "image_id", "left")
                .withColumn("reason", F.when(F.col("reason").isNull() & F.col("rep").isNotNull()
                                             & (F.col("rep") != F.col("image_id")), "duplicate_perceptual")
                            .otherwise(F.col("reason")))
                .withColumn("duplicate_of", F.when(F.col("reason") == "duplicate_perceptual", F.col("rep"))
                            .when(F.col("reason") == "duplicate_exact", F.col("image_id"))))
        out = pool.select(
            "url_id", "url", "doc_id", "alt_text", "image_id",
            F.col("width").cast("int"), F.col("height").cast("int"), "format", F.col("phash").cast("long"),
            F.col("http_status").cast("int"), "duplicate_of",
            F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason")
        ctx.write("silver.images", out)
        for df in (cached, urls):
            df.unpersist()
        ledger = ledger_from_status("images", n_slots, ctx.read("silver.images"))
        ledger.rejected["duplicate_url"] = n_slots - n_urls
        log_funnel(ctx.tracker, ledger, IMAGE_STAGES, "image slots", "extract_images: rows left after each filter")
        return [ledger]


if __name__ == "__main__":
    sys.exit(ExtractImages.main())

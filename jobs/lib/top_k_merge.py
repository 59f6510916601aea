"""retrieve's global top-k: every image's candidates from all its probed buckets merged into
its k best rows (the driver half of udfs/retrieve_search.py, and part of retrieve's work
fingerprint with it).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


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

"""Which copy a duplicate group keeps, one rule for perceptual and semantic dedup: the
largest image (by pixels), ties broken by the smallest id; sentences by the smallest id."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def image_rank(images: DataFrame) -> DataFrame:
    """image_id, rank (smaller is kept first) over rows with image_id, width, height."""
    return (images.groupBy("image_id")
            .agg((-F.max(F.col("width").cast("long") * F.col("height"))).alias("rank")))


def id_rank(df: DataFrame, key: str) -> DataFrame:
    """key, rank 0 for every row: the id alone decides."""
    return df.select(key, F.lit(0).cast("long").alias("rank"))

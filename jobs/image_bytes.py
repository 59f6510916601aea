"""Where a kept image's bytes are: silver.image_fetches holds each fetched URL's bytes once;
silver.images names, for each kept image, the URL whose fetch it kept. read: a stage's
ctx.read (the stage declares BYTES_TABLES) or the table store's read."""
from __future__ import annotations

from pyspark.sql import DataFrame

BYTES_TABLES = ("silver.images", "silver.image_fetches")


def kept_image_bytes(read) -> DataFrame:
    """(image_id, bytes) of every kept image, one row per image (exact copies are rejected
    in silver.images)."""
    kept = read("silver.images").where("status = 'kept'").select("url_id", "image_id")
    return kept.join(read("silver.image_fetches").select("url_id", "bytes"), "url_id").select("image_id", "bytes")


def with_image_bytes(read, rows: DataFrame) -> DataFrame:
    """rows (with image_id) and each one's bytes; null where the image is not kept. Only the
    fetches of these rows' images are joined, so a unit of new images reads no old bytes."""
    return rows.join(kept_image_bytes(read).join(rows.select("image_id"), "image_id", "left_semi"),
                     "image_id", "left")

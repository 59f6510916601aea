"""The kept images' bytes, stored once.

silver.image_fetches holds every response body; silver.images holds the pool's rows without
bytes, so rebuilding the pool after an increment writes no image bytes. A reader that needs
the pixels (embed, generate, export's WebDataset shards and card) joins them here.
"""
from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame


def kept_image_bytes(read: Callable[[str], DataFrame]) -> DataFrame:
    """(image_id, bytes), one row per kept image (exact copies are rejected in the pool, so
    a kept image_id has one URL)."""
    kept = read("silver.images").where("status = 'kept'").select("url_id", "image_id")
    return kept.join(read("silver.image_fetches").select("url_id", "bytes"), "url_id").select("image_id", "bytes")

"""silver.image_decodes rows: the stored bytes of each pending content, decoded by the
mapInPandas body of udfs/decode_rows.py. The decode units' whole work code (it reaches no
runtime module)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.udfs.decode_rows import DECODE_DDL, decode_fn
from realsyn.udfs.image_decode import DecodeLimits


def decoded_rows(unit: DataFrame, contents: DataFrame, limits: DecodeLimits, max_bytes: int, tasks: int,
                 profile=None) -> DataFrame:
    """One decode row per image_id of `unit`, from the bytes `contents` (image_id, bytes) holds."""
    # Copies of a content meet in one task, where the body decodes the first (no shuffle of
    # the bytes to drop them first).
    stored = contents.select("image_id", "bytes").join(F.broadcast(unit), "image_id")
    return stored.repartition(tasks, "image_id").mapInPandas(decode_fn(limits, max_bytes), DECODE_DDL,
                                                            profile=profile)

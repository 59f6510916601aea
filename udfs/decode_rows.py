"""mapInPandas body of the decode: stored response bytes (one row per distinct content) ->
size, format and perceptual hash, or the reason they cannot be used. Runs on the bytes
silver.image_fetches keeps, so changing a decode limit or the decoder decodes again and
fetches nothing."""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from PIL import Image

from realsyn.udfs.image_decode import DecodeLimits, decode

DECODE_DDL = "image_id string, width int, height int, format string, phash long, decode_reason string"


def decode_batch(batch: pd.DataFrame, limits: DecodeLimits, max_bytes: int) -> pd.DataFrame:
    rows: list[tuple] = []
    for image_id, data in zip(batch["image_id"], batch["bytes"]):
        if data is not None and len(data) > max_bytes:   # fetched under a larger fetch.max_bytes
            rows.append((image_id, None, None, None, None, "too_large"))
            continue
        d = decode(data, limits)
        rows.append((image_id, d.width, d.height, d.format, d.phash, d.reason))
    out = pd.DataFrame(rows, columns=["image_id", "width", "height", "format", "phash", "decode_reason"])
    for col in ("width", "height", "phash"):
        out[col] = out[col].astype("Int64")
    return out


def decode_fn(limits: DecodeLimits, max_bytes: int):
    """Copies of one content (URLs with the same bytes share an image_id, the sha256) arrive
    in the same task (partitioned by image_id): each is decoded once, its first copy, so no
    shuffle of the bytes is needed to drop the others first.

    decode sets Pillow's process-wide bomb guard to images.max_pixels; the task puts it back
    when it ends, so a Python worker Spark reuses for another run's export or embedding
    (a smaller limit, in the same session) does not refuse the images that run accepted."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        guard = Image.MAX_IMAGE_PIXELS
        seen: set[str] = set()
        try:
            for batch in batches:
                first = ~batch["image_id"].duplicated() & ~batch["image_id"].isin(seen)
                batch = batch[first]
                seen.update(batch["image_id"])
                yield decode_batch(batch, limits, max_bytes)
        finally:
            Image.MAX_IMAGE_PIXELS = guard
    return run

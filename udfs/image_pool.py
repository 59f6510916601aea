"""mapInPandas body for the image pool: fetch each URL, then decode and measure the bytes."""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.fetch import FetchSettings, fetch_iter
from realsyn.udfs.image_decode import DecodeLimits, decode

OUTPUT_DDL = ("url_id string, bytes binary, http_status int, image_id string, width int, height int, "
              "format string, phash long, fetch_reason string")


def fetch_and_measure(batch: pd.DataFrame, settings: FetchSettings, limits: DecodeLimits) -> pd.DataFrame:
    rows: list[tuple] = []
    # Lazily: each image is decoded as soon as its fetch is done while later ones download.
    for url_id, f in zip(batch["url_id"], fetch_iter(batch["url"].tolist(), settings)):
        if f.reason is not None:
            rows.append((url_id, None, f.http_status, None, None, None, None, None, f.reason))
            continue
        d = decode(f.data, limits)
        rows.append((url_id, f.data if d.reason is None else None, f.http_status, d.image_id,
                     d.width, d.height, d.format, d.phash, d.reason))
    out = pd.DataFrame(rows, columns=["url_id", "bytes", "http_status", "image_id", "width", "height",
                                      "format", "phash", "fetch_reason"])
    for col in ("http_status", "width", "height", "phash"):
        out[col] = out[col].astype("Int64")
    return out


def partition_fn(settings: FetchSettings, limits: DecodeLimits):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield fetch_and_measure(batch, settings, limits)
    return run

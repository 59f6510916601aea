"""mapInPandas body of the fetch: each URL's response as the web gave it (status, the body up
to fetch.max_bytes, its sha256), or why there was none. Nothing is decoded here: the
stored bytes are decoded by udfs/decode_rows.py, again whenever decoding changes, so a
new decoder or limit never fetches a URL again."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.fetch import FetchSettings, fetch_unordered

FETCH_DDL = "url_id string, bytes binary, http_status int, image_id string, fetch_reason string"


def fetch_batch(batch: pd.DataFrame, settings: FetchSettings) -> pd.DataFrame:
    rows: list[tuple] = []
    url_ids = batch["url_id"].tolist()
    for position, f in fetch_unordered(batch["url"].tolist(), settings):
        url_id = url_ids[position]
        if f.reason is not None or not f.data:
            rows.append((url_id, None, f.http_status, None, f.reason or "empty"))
        else:
            rows.append((url_id, f.data, f.http_status, hashlib.sha256(f.data).hexdigest(), None))
    out = pd.DataFrame(rows, columns=["url_id", "bytes", "http_status", "image_id", "fetch_reason"])
    out["http_status"] = out["http_status"].astype("Int64")
    return out


def fetch_fn(settings: FetchSettings):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield fetch_batch(batch, settings)
    return run

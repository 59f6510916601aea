"""mapInPandas body of the fetch: each URL's response as the web gave it (status, the body up
to fetch.max_bytes, its sha256), or why there was none. Nothing is decoded here: the
stored bytes are decoded by udfs/decode_rows.py, again whenever decoding changes, so a
new decoder or limit never fetches a URL again.

A task's URLs are one stream across its input batches (the window of `concurrency` fetches
stays full until the task's last URL, so the slowest responses are waited for once per
task, not once per batch), and rows leave in small chunks as they complete: what a task
holds is the fetches in flight plus one chunk, however many URLs it has."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pandas as pd

from realsyn.udfs.fetch import FetchSettings, fetch_unordered

FETCH_DDL = "url_id string, bytes binary, http_status int, image_id string, fetch_reason string"
CHUNK_ROWS = 64   # rows per output batch: bounds what completed fetches hold before Spark takes them
COLUMNS = ["url_id", "bytes", "http_status", "image_id", "fetch_reason"]


def _frame(rows: list[tuple]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["http_status"] = out["http_status"].astype("Int64")
    return out


def fetch_rows(pairs, settings: FetchSettings, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """(url_id, url) pairs, possibly lazy -> output frames of at most chunk_rows rows, in the
    order fetches finish."""
    ids: list[str] = []

    def urls():
        for url_id, url in pairs:
            ids.append(url_id)
            yield url
    rows: list[tuple] = []
    for position, f in fetch_unordered(urls(), settings):
        url_id = ids[position]
        if f.reason is not None or not f.data:
            rows.append((url_id, None, f.http_status, None, f.reason or "empty"))
        else:
            rows.append((url_id, f.data, f.http_status, hashlib.sha256(f.data).hexdigest(), None))
        if len(rows) >= chunk_rows:
            yield _frame(rows)
            rows = []
    if rows:
        yield _frame(rows)


def fetch_fn(settings: FetchSettings):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        pairs = ((u, url) for batch in batches for u, url in zip(batch["url_id"].tolist(), batch["url"].tolist()))
        yield from fetch_rows(pairs, settings)
    return run

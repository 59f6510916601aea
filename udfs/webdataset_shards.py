"""WebDataset tar shards as img2dataset writes them: KEY.jpg, KEY.txt (text1), KEY.json.

Keys are image ids (hex), never input strings. Images are re-encoded as JPEG with the
shorter side brought down to `resize_to` (keep ratio, only if bigger). Each Spark task
writes one shard to a temporary name and renames it when complete.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator

import pandas as pd
from pyspark import TaskContext
from pyspark.sql import DataFrame

from realsyn.udfs.clip_encoder import open_image


def resize_keep_ratio(img, size: int):
    from PIL import Image
    w, h = img.size
    short = min(w, h)
    if short <= size:
        return img
    scale = size / short
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def shard_writer(folder: str, resize_to: int):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        shard = TaskContext.get().partitionId()
        path = os.path.join(folder, f"{shard:05d}.tar")
        tmp = path + ".tmp"
        count = 0
        with tarfile.open(tmp, "w") as tar:
            for batch in batches:
                for row in batch.itertuples(index=False):
                    key = str(row.image_id)
                    if not all(c in "0123456789abcdef" for c in key):
                        continue  # ids are sha256 hex; anything else never names a member
                    buf = io.BytesIO()
                    resize_keep_ratio(open_image(row.bytes), resize_to).save(buf, "JPEG", quality=95)
                    _add(tar, f"{key}.jpg", buf.getvalue())
                    _add(tar, f"{key}.txt", (row.text1 or "").encode())
                    meta = {"image_id": key, "url": row.raw_image_url, "text2": row.text2, "text3": row.text3,
                            "syn_text": row.syn_text, "cluster_id": int(row.cluster_id), "min_cap": int(row.min_cap)}
                    _add(tar, f"{key}.json", json.dumps(meta).encode())
                    count += 1
        os.replace(tmp, path)
        yield pd.DataFrame({"shard": [path], "count": [count]})
    return run


def write_shards(df: DataFrame, folder: str, resize_to: int, rows_per_shard: int = 10_000) -> dict[str, int]:
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        if old.endswith((".tar", ".tmp")):
            os.remove(os.path.join(folder, old))
    n = df.count()
    cols = ["image_id", "bytes", "raw_image_url", "text1", "text2", "text3", "syn_text", "cluster_id", "min_cap"]
    out = (df.select(*cols).repartition(max(1, -(-n // rows_per_shard)))
           .mapInPandas(shard_writer(folder, resize_to), "shard string, count long").collect())
    return {r["shard"]: r["count"] for r in out}

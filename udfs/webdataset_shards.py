"""WebDataset tar shards as img2dataset writes them: KEY.jpg, KEY.txt (text1), KEY.json.

Keys are image ids (hex), never input strings. Images are re-encoded as JPEG with the
shorter side brought down to `resize_to` (keep ratio, only if bigger). Each Spark task
writes one shard to a temporary name and renames it when complete (on an object store:
writes it on its own disk and uploads it whole). A row the writer cannot
write (a key that is not a hex id, an image that no longer decodes) is counted by reason,
and the written rows are counted back from the tar files (samples_in), for export's ledger.
The driver side (one task per shard, the read-back) is jobs/webdataset_export.py.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator

import pandas as pd
from pyspark import TaskContext

from realsyn.udfs import object_files
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


REJECT_REASONS = ("bad_key", "image_error")


def shard_writer(folder: str, resize_to: int):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        shard = TaskContext.get().partitionId()
        path = object_files.join(folder, f"{shard:05d}.tar")
        # A local folder gets the tar under a temporary name beside it; an object store gets
        # it uploaded whole from the task's own disk.
        tmp = path + ".tmp" if object_files.is_local(folder) else os.path.join(
            tempfile.mkdtemp(prefix="realsyn-shard-"), f"{shard:05d}.tar")
        count, rejected = 0, dict.fromkeys(REJECT_REASONS, 0)
        with tarfile.open(tmp, "w") as tar:
            for batch in batches:
                for row in batch.itertuples(index=False):
                    key = str(row.image_id)
                    if not key or not all(c in "0123456789abcdef" for c in key):
                        rejected["bad_key"] += 1   # ids are sha256 hex; anything else never names a member
                        continue
                    buf = io.BytesIO()
                    try:
                        resize_keep_ratio(open_image(row.bytes, resize_to), resize_to).save(buf, "JPEG", quality=95)
                    except Exception:
                        rejected["image_error"] += 1
                        continue
                    _add(tar, f"{key}.jpg", buf.getvalue())
                    _add(tar, f"{key}.txt", (row.text1 or "").encode())
                    meta = {"image_id": key, "url": row.raw_image_url, "text2": row.text2, "text3": row.text3,
                            "syn_text": row.syn_text, "cluster_id": int(row.cluster_id), "min_cap": int(row.min_cap)}
                    _add(tar, f"{key}.json", json.dumps(meta).encode())
                    count += 1
        # The ledger's "written" is read back from the finished tar, here, not on the driver.
        written = samples_in(tmp)
        if object_files.is_local(folder):
            os.replace(tmp, path)
        else:
            object_files.upload(tmp, path)
            shutil.rmtree(os.path.dirname(tmp), ignore_errors=True)
        yield pd.DataFrame({"shard": [path], "count": [count], "written": [written],
                            **{r: [n] for r, n in rejected.items()}})
    return run


def samples_in(path: str) -> int:
    """Rows a shard holds, read back from its members (one .jpg per row)."""
    with tarfile.open(path) as tar:
        return sum(1 for m in tar.getmembers() if m.name.endswith(".jpg"))

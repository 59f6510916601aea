"""WebDataset tar shards as img2dataset writes them: KEY.jpg, KEY.txt (text1), KEY.json.

Keys are image ids (hex), never input strings. Images are re-encoded as JPEG with the
shorter side brought down to `resize_to` (keep ratio, only if bigger). One tar per export
shard (`NNNNN.tar`), written by one task through udfs/shard_files.write_shards (temporary
name, then a rename or a whole upload). Members carry a fixed mtime and the rows come in
image id order, so the same rows make the same bytes. A row the writer cannot write (a
key that is not a hex id, an image that no longer decodes or has no bytes) is counted by
reason, and the written rows are counted back from the finished tar (samples_in), for
export's ledger. The driver side is jobs/lib/webdataset_export.py.
"""
from __future__ import annotations

import io
import json
import os
import tarfile

import pyarrow as pa

from realsyn.udfs.image_decode import open_rgb
from realsyn.udfs.shard_files import Written, shard_name

MEMBER_MTIME = 0          # fixed: a rewrite of the same rows is byte-identical
REJECT_REASONS = ("bad_key", "image_error")


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
    info.size, info.mtime = len(data), MEMBER_MTIME
    tar.addfile(info, io.BytesIO(data))


class TarSink:
    def __init__(self, path: str, resize_to: int):
        self.path, self.resize_to = path, resize_to
        self.tar = tarfile.open(path, "w")
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)

    def add(self, rows: pa.RecordBatch) -> None:
        for row in rows.to_pylist():
            key = str(row["image_id"])
            if not key or not all(c in "0123456789abcdef" for c in key):
                self.rejected["bad_key"] += 1   # ids are sha256 hex; anything else never names a member
                continue
            buf = io.BytesIO()
            try:
                resize_keep_ratio(open_rgb(row["bytes"], self.resize_to), self.resize_to).save(buf, "JPEG", quality=95)
            except Exception:
                self.rejected["image_error"] += 1
                continue
            _add(self.tar, f"{key}.jpg", buf.getvalue())
            _add(self.tar, f"{key}.txt", (row["text1"] or "").encode())
            meta = {"image_id": key, "url": row["raw_image_url"], "text2": row["text2"], "text3": row["text3"],
                    "syn_text": row["syn_text"], "cluster_id": int(row["cluster_id"]), "min_cap": int(row["min_cap"])}
            _add(self.tar, f"{key}.json", json.dumps(meta).encode())

    def close(self) -> Written:
        self.tar.close()
        written = samples_in(self.path)   # read back from the finished tar, here, not on the driver
        return Written({os.path.basename(self.path): (self.path, written)}, written,
                       {r: n for r, n in self.rejected.items() if n})


def tar_sink(resize_to: int):
    """Sink factory for udfs/shard_files.write_shards: one `NNNNN.tar` per shard."""
    def open_sink(shard: int, tmp: str) -> TarSink:
        return TarSink(os.path.join(tmp, f"{shard_name(shard)}.tar"), resize_to)
    return open_sink


def samples_in(path: str) -> int:
    """Rows a shard holds, read back from its members (one .jpg per row)."""
    with tarfile.open(path) as tar:
        return sum(1 for m in tar.getmembers() if m.name.endswith(".jpg"))

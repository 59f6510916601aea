"""Driver side of the WebDataset export: the tars as one output of jobs/lib/export_shards.py
(stable shards, written again only when their rows change), one Spark task per tar
through udfs/webdataset_shards.tar_sink, which counts the rows back from the finished
tar for export's ledger. Only the rows of the shards being written are joined to their
image bytes: an image_id is the sha256 of its bytes, so the row hash needs no pixels."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.export_shards import ShardedOutput, write_shard_files
from realsyn.udfs.shard_files import ROW_HASH, SHARD
from realsyn.udfs.webdataset_shards import REJECT_REASONS, tar_sink

SHARD_COLUMNS = ["image_id", "bytes", "raw_image_url", "text1", "text2", "text3", "syn_text", "cluster_id", "min_cap"]
ROW_COLUMNS = tuple(c for c in SHARD_COLUMNS if c != "bytes")   # what a tar holds of a row besides the image
ROWS_PER_SHARD = 10_000


def webdataset_output(rows: DataFrame, images: DataFrame, resize_to: int, rows_per_shard: int = ROWS_PER_SHARD,
                      profile=None) -> ShardedOutput:
    """The tars of `rows` (gold rows); `images`: (image_id, bytes). A row without bytes is
    refused as image_error, never dropped. `profile`: the stage's ResourceProfile for the
    writing tasks (jobs/core/resources.py), or None."""
    return ShardedOutput(
        name="webdataset", ledger="webdataset", rows=rows.select(*ROW_COLUMNS), content=ROW_COLUMNS,
        order=("image_id",), sink=tar_sink(resize_to), settings={"resize_to": resize_to, "rows_per_shard": rows_per_shard},
        code=("realsyn.jobs.lib.webdataset_export", "realsyn.udfs.webdataset_shards"), rows_per_shard=rows_per_shard,
        prepare=lambda df: df.join(images.select("image_id", "bytes"), "image_id", "left"), profile=profile)


def write_shards(df: DataFrame, folder: str, resize_to: int, rows_per_shard: int = ROWS_PER_SHARD,
                 profile=None) -> dict:
    """Write `df` (SHARD_COLUMNS) as tars into `folder` in one go, with no sidecars or
    manifest; returns rows in, rows found in the written tars, the rows the writer could
    not write by reason, and the tars written."""
    n = df.count()
    k = max(1, -(-n // rows_per_shard))
    rows = (df.select(*SHARD_COLUMNS).withColumn(SHARD, F.pmod(F.xxhash64("image_id"), F.lit(k)))
            .withColumn(ROW_HASH, F.lit(0).cast("long")))
    out = write_shard_files(rows, 0, k, ("image_id",), tar_sink(resize_to), folder, None, profile)
    import json
    rejected = {r: sum(json.loads(row["rejected"]).get(r, 0) for row in out) for r in REJECT_REASONS}
    return {"rows_in": n, "written": sum(row["written"] for row in out),
            "rejected": {r: c for r, c in rejected.items() if c}, "shards": len(out)}

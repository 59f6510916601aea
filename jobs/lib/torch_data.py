"""Spark -> PyTorch: gold.realsyn as a Mosaic Streaming (MDS) dataset.

The executors write MDS shards (streaming's MDSWriter, one group of shards per export shard:
udfs/shard_files.py, so an increment writes only the groups whose rows changed); training
reads them with `streaming.StreamingDataset`, which splits samples over DataLoader workers
(and ranks) so each row comes once per epoch. Why this library: docs/decisions.md.
MDS columns cannot hold nulls: missing texts are "", missing floats NaN, and min_cap -1
means "in no subset".
"""
from __future__ import annotations

import json
import tempfile

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.export_shards import ShardedOutput
from realsyn.udfs import object_files
from realsyn.udfs.shard_files import mds_sink

MDS_COLUMNS = {"image_id": "str", "raw_image_url": "str", "text1": "str", "text2": "str", "text3": "str",
               "syn_text": "str", "score1": "float32", "sim": "float32", "cluster_id": "int32", "min_cap": "int32"}
_NULL_AS = {"str": "", "float32": float("nan"), "int32": -1}
_SPARK_TYPE = {"str": "string", "float32": "float", "int32": "int"}


def mds_rows(gold: DataFrame) -> DataFrame:
    return gold.select(*[F.coalesce(F.col(c).cast(_SPARK_TYPE[t]), F.lit(_NULL_AS[t]).cast(_SPARK_TYPE[t])).alias(c)
                         for c, t in MDS_COLUMNS.items()])


def samples_in_index(folder: str) -> int:
    """Rows an MDS folder holds, read back from its merged index.json."""
    index = json.loads(object_files.read_bytes(object_files.join(folder, "index.json")))
    return sum(int(s["samples"]) for s in index["shards"])


def mds_output(gold: DataFrame, shard_bytes: int) -> ShardedOutput:
    """All gold rows as MDS groups (jobs/lib/export_shards.py): one folder `NNNNN/` per group of
    about `shard_bytes` of samples (MDSWriter's zstd shards and the group's index.json), and
    `index.json` merged over the live groups, as streaming's merge_index writes it."""
    text = [c for c, t in MDS_COLUMNS.items() if t == "str"]
    return ShardedOutput(
        name="mds", ledger="mds", rows=mds_rows(gold), content=tuple(MDS_COLUMNS), order=("image_id",),
        sink=mds_sink(MDS_COLUMNS, shard_bytes), settings={"shard_bytes": int(shard_bytes)},
        code=("realsyn.jobs.lib.torch_data",), shard_bytes=int(shard_bytes),
        row_bytes=sum(F.length(c) for c in text) + 4 * (len(MDS_COLUMNS) - len(text)), finish=merged_index)


def merged_index(entry: dict) -> dict[str, tuple[bytes, int]]:
    """mds/index.json over the live groups in id order (none when there are no rows)."""
    shards = [e for _, s in sorted(entry["shards"].items(), key=lambda kv: int(kv[0])) for e in s["extra"]]
    if not shards:
        return {}
    return {"index.json": (json.dumps({"version": 2, "shards": shards}).encode(), sum(int(e["samples"]) for e in shards))}


def gold_dataset(folder: str, batch_size: int | None = None, shuffle: bool = False, seed: int = 0,
                 cache_dir: str | None = None):
    """A torch IterableDataset over the MDS export (a `streaming.StreamingDataset`).

    Give the DataLoader's batch_size here too: Streaming partitions samples per worker in
    whole batches. An export on an object store is streamed into `cache_dir` (default: a
    new temporary folder)."""
    from streaming import StreamingDataset
    if not object_files.exists(object_files.join(folder, "index.json")):
        raise FileNotFoundError(f"no MDS export at {folder}: run the export stage with export.mds=true")
    if object_files.is_local(folder):
        return StreamingDataset(local=folder, batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed)
    return StreamingDataset(remote=object_files.boto_uri(folder), local=cache_dir or tempfile.mkdtemp(prefix="realsyn-mds-"),
                            batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed)

"""Spark -> PyTorch: gold.realsyn as a Mosaic Streaming (MDS) dataset.

The executors write MDS shards (`streaming.base.converters.dataframe_to_mds`); training
reads them with `streaming.StreamingDataset`, which splits samples over DataLoader workers
(and ranks) so each row comes once per epoch. Why this library: docs/decisions.md.
MDS columns cannot hold nulls: missing texts are "", missing floats NaN, and min_cap -1
means "in no subset".
"""
from __future__ import annotations

import logging
import os
import tempfile

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.udfs import object_files

MDS_COLUMNS = {"image_id": "str", "raw_image_url": "str", "text1": "str", "text2": "str", "text3": "str",
               "syn_text": "str", "score1": "float32", "sim": "float32", "cluster_id": "int32", "min_cap": "int32"}
_NULL_AS = {"str": F.lit(""), "float32": F.lit(float("nan")), "int32": F.lit(-1)}
_SPARK_TYPE = {"str": "string", "float32": "float", "int32": "int"}


def mds_rows(gold: DataFrame) -> DataFrame:
    return gold.select(*[F.coalesce(F.col(c).cast(_SPARK_TYPE[t]), _NULL_AS[t].cast(_SPARK_TYPE[t])).alias(c)
                         for c, t in MDS_COLUMNS.items()])


def samples_in_index(folder: str) -> int:
    """Rows an MDS folder holds, read back from its merged index.json."""
    import json
    index = json.loads(object_files.read_bytes(object_files.join(folder, "index.json")))
    return sum(int(s["samples"]) for s in index["shards"])


def write_mds(gold: DataFrame, folder: str, shard_bytes: int) -> tuple[int, int]:
    """Replace `folder` with MDS shards of gold's rows (one sub-folder per Spark task and
    a merged index.json). Returns (rows in, rows in the written index); an empty table
    writes none."""
    from streaming.base.converters import dataframe_to_mds
    # It warns that a local path is local; that is what we want here.
    logging.getLogger("streaming.base.converters.dataframe_to_mds").setLevel(logging.ERROR)
    object_files.remove_tree(folder)
    rows = mds_rows(gold)
    n = rows.count()
    if n == 0:
        return 0, 0
    if object_files.is_local(folder):
        os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
    # Streaming uploads to s3:// itself (boto3: the same endpoint and credentials).
    dataframe_to_mds(rows, merge_index=True,
                     mds_kwargs={"out": object_files.boto_uri(folder), "columns": MDS_COLUMNS,
                                 "size_limit": int(shard_bytes)})
    return n, samples_in_index(folder)


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

"""Executor bodies that attach each stored vector's nearest centroid(s) (broadcast centroids)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.vector_codec import arrow_vectors, from_bytes


def assign_fn(centroids_blob: bytes, dim: int, dtype: str, probes: int):
    """mapInPandas body: one row per (row, probed centroid of one flat level), with cluster_id
    and probe."""
    levels = CentroidLevels.flat(centroids_blob, dim)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            vecs = from_bytes(batch["embedding"].tolist(), dim, dtype)
            _, ids = nearest_clusters(vecs, levels, probes)
            out = batch.loc[batch.index.repeat(ids.shape[1])].copy()
            out["cluster_id"] = ids.reshape(-1).astype("int32")
            out["probe"] = np.tile(np.arange(ids.shape[1], dtype="int32"), len(batch))
            yield out
    return run


def assign_arrow_fn(levels: CentroidLevels, dtype: str, bounds: np.ndarray, part_keys: np.ndarray):
    """mapInArrow body: prepend each row's cluster (its nearest centroid in its nearest coarse
    group; vectors read in place, no pandas) and the shuffle key of the file its cluster range
    goes to: part_keys[i] for the clusters from bounds[i - 1] up to bounds[i]."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype), levels, 1)
            cid = ids[:, 0].astype(np.int32)
            part = part_keys[np.searchsorted(bounds, cid, side="right")]
            yield pa.RecordBatch.from_arrays([pa.array(cid), *batch.columns, pa.array(part)],
                                             names=["cluster_id", *batch.schema.names, "part"])
    return run

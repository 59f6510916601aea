"""The one executor body that attaches each stored vector's nearest centroid (broadcast
centroids): cluster's sentence clusters and semantic dedup's coarse groups alike."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.vector_codec import arrow_vectors


def assign_fn(levels: CentroidLevels, dtype: str, bounds: np.ndarray | None = None,
              part_keys: np.ndarray | None = None):
    """mapInArrow body: append each row's cluster_id (its nearest centroid, in its nearest
    coarse group when `levels` has two; vectors read from Arrow, no pandas) and, with
    part_keys, the shuffle key `part` of the file its cluster range goes to: part_keys[i]
    for the clusters from bounds[i - 1] up to bounds[i]."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype), levels, 1)
            cid = ids[:, 0].astype(np.int32)
            columns, names = [*batch.columns, pa.array(cid)], [*batch.schema.names, "cluster_id"]
            if part_keys is not None:
                columns.append(pa.array(part_keys[np.searchsorted(bounds, cid, side="right")]))
                names.append("part")
            yield pa.RecordBatch.from_arrays(columns, names=names)
    return run

"""retrieve's executor bodies: routing images to their probed clusters and the exact search
inside a bucket. With the global top-k merge (jobs/lib/top_k_merge.py) everything that
decides a gold.retrievals row besides the vectors, the centroids and the settings, so the
two are the whole of retrieve's work fingerprint (they reach no runtime module).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.cluster_plan import Piece
from realsyn.udfs.stored_files import open_file
from realsyn.udfs.vector_codec import arrow_vectors
from realsyn.udfs.vector_search import search_clusters

ROUTED_DDL = "image_id string, embedding binary, cluster_id int, bucket long"
CANDIDATES_DDL = "image_id string, sentence_id string, score float"


def route_fn(levels: CentroidLevels, dtype: str, probes: int, coarse_probes: int,
             routes: dict[int, list[int]], bucket_keys: np.ndarray):
    """mapInArrow body: one row per (image, probed cluster, bucket holding that cluster); the
    bucket column holds the bucket's shuffle key (see partition_keys)."""
    n_clusters = levels.clusters
    count = np.zeros(n_clusters + 1, np.int64)     # last slot: faiss's -1 (fewer centroids)
    for cid, bs in routes.items():
        count[cid] = len(bs)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    flat = bucket_keys[[b for cid in range(n_clusters) for b in routes.get(cid, [])]]

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype),
                                      levels, probes, coarse_probes)
            ids = ids.reshape(-1)
            n = count[ids]                           # clusters with no sentences route nowhere
            rows = np.repeat(np.repeat(np.arange(batch.num_rows), ids.size // batch.num_rows), n)
            first = np.repeat(start[ids] - (np.cumsum(n) - n), n)
            buckets = flat[first + np.arange(int(n.sum()))]
            take = pa.array(rows)
            yield pa.RecordBatch.from_arrays(
                [batch.column("image_id").take(take), batch.column("embedding").take(take),
                 pa.array(np.repeat(ids, n).astype(np.int32)), pa.array(buckets)],
                names=["image_id", "embedding", "cluster_id", "bucket"])
    return run


def read_pieces(pieces: list[Piece], dim: int, dtype: str):
    """A bucket's sentence rows, read from their file(s) with row-group pruning on cluster_id.

    Checks each cluster's row count against the plan (counted through Delta), so a table
    changed outside the cluster stage (deleted rows, rewritten files) fails loudly.
    """
    import pyarrow.parquet as pq
    parts = []
    for file in sorted({p.file for p in pieces}):
        mine = [p for p in pieces if p.file == file]
        lo, hi = min(p.cluster for p in mine), max(p.cluster for p in mine)
        path, filesystem = open_file(file)
        table = pq.read_table(path, columns=["cluster_id", "sentence_id", "embedding"], filesystem=filesystem,
                              filters=[("cluster_id", ">=", lo), ("cluster_id", "<=", hi)])
        clusters = table.column("cluster_id").to_numpy()
        take = []
        for p in mine:
            rows = np.flatnonzero(clusters == p.cluster)
            if len(rows) != p.rows:
                raise RuntimeError(f"gold.sentence_clusters file {file} holds {len(rows)} rows of cluster "
                                   f"{p.cluster}, the plan counted {p.rows}; the table changed outside "
                                   "the cluster stage: re-run cluster")
            take.append(rows[p.lo:p.hi])
        parts.append(table.take(pa.array(np.concatenate(take))))
    table = pa.concat_tables(parts)
    return (table.column("cluster_id").to_numpy(), table.column("sentence_id").combine_chunks(),
            arrow_vectors(table.column("embedding"), dim, dtype))


def search_fn(buckets: list[list[Piece]], bucket_keys: np.ndarray, dim: int, dtype: str, k: int,
              min_score: float):
    """grouped applyInArrow body: a bucket's images (streamed) against its sentences."""
    bucket_of = {int(key): b for b, key in enumerate(bucket_keys)}

    def run(key: tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        sentences = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if sentences is None:
                sentences = read_pieces(buckets[bucket_of[key[0].as_py()]], dim, dtype)
            s_clusters, s_ids, s_vecs = sentences
            rows, cols, scores = search_clusters(
                batch.column("cluster_id").to_numpy(), arrow_vectors(batch.column("embedding"), dim, dtype),
                s_clusters, s_vecs, k, min_score)
            yield pa.RecordBatch.from_arrays(
                [batch.column("image_id").take(pa.array(rows)), s_ids.take(pa.array(cols)),
                 pa.array(scores, pa.float32())], names=["image_id", "sentence_id", "score"])
    return run


def probes_fn(levels: CentroidLevels, dtype: str, probes: int, coarse_probes: int):
    """mapInArrow body: one row per (image, probed cluster), clusters without sentences too."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            _, ids = nearest_clusters(arrow_vectors(batch.column("embedding"), levels.dim, dtype), levels,
                                      probes, coarse_probes)
            rows = np.repeat(np.arange(batch.num_rows), ids.shape[1])
            yield pa.RecordBatch.from_arrays([batch.column("image_id").take(pa.array(rows)),
                                              pa.array(ids.reshape(-1).astype(np.int32))],
                                             names=["image_id", "cluster_id"])
    return run

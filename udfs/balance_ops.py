"""Balance sampling math over Arrow batches: shared by the Spark stage (mapInArrow) and the
single-process benchmark, so both engines run the same numpy/faiss code per batch; and the
nested cap rule, which both evaluate from the same function (min_cap)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.vector_codec import arrow_vectors

OUT_SCHEMA = pa.schema([("image_id", pa.string()), ("sim", pa.float32()),
                        ("reason", pa.string()), ("cluster_id", pa.int32())])
SAMPLE_SCHEMA = pa.schema([("image_id", pa.string()), ("embedding", pa.binary())])
SAMPLE_BUCKETS = 1_000_000


def score_and_assign(batch: pa.RecordBatch | pa.Table, dim: int, dtype: str, sim_min: float, sim_max: float,
                     centroids: CentroidLevels | None) -> pa.RecordBatch:
    """image_id, embedding, text_vec -> image_id, sim, reason, cluster_id.

    Pairs outside [sim_min, sim_max] get a reason (above: ocr_like, below: mismatch); a null
    text vector is encode_error. Only pairs inside the window get a cluster."""
    n = batch.num_rows
    text = batch.column("text_vec")
    has_text = np.asarray(text.is_valid())
    img = batch.column("embedding")
    if not has_text.all():
        img, text = img.filter(pa.array(has_text)), text.filter(pa.array(has_text))
    a, t = arrow_vectors(img, dim, dtype), arrow_vectors(text, dim, dtype)
    sim = np.full(n, np.nan, dtype=np.float32)
    sim[has_text] = np.einsum("ij,ij->i", a, t)
    reason = np.full(n, None, dtype=object)
    reason[~has_text] = "encode_error"
    reason[has_text & (sim > sim_max)] = "ocr_like"
    reason[has_text & (sim < sim_min)] = "mismatch"
    keep = has_text & (sim >= sim_min) & (sim <= sim_max)
    cluster = np.zeros(n, dtype=np.int32)
    if centroids is not None and keep.any():
        _, ids = nearest_clusters(a[keep[has_text]], centroids, 1)
        cluster[keep] = ids[:, 0]
    return pa.RecordBatch.from_arrays(
        [batch.column("image_id"), pa.array(sim, mask=~has_text),
         pa.array(reason, pa.string()), pa.array(cluster, mask=~keep if centroids is not None else np.ones(n, bool))],
        schema=OUT_SCHEMA)


def cluster_count(sampled: int, fraction: float, num_clusters: int, per_cluster: int) -> int:
    """K of a fit: the window's pairs estimated from `sampled` pairs drawn at `fraction`, one
    cluster per `per_cluster` of them, at most num_clusters and at least one."""
    return max(1, min(num_clusters, int(round(sampled / fraction)) // per_cluster or 1))


def sample_bound(fraction: float) -> int:
    """The k-means sample is every pair with sample_key below this (a key-hash draw of
    about `fraction` of the pairs, whatever the row split)."""
    return max(1, min(SAMPLE_BUCKETS, int(round(fraction * SAMPLE_BUCKETS))))


def sampled_in_window(batch: pa.RecordBatch | pa.Table, bound: int, dim: int, dtype: str,
                      sim_min: float, sim_max: float) -> pa.RecordBatch:
    """image_id, embedding of the sampled pairs (sample_key < bound) whose similarity lies
    in the window."""
    text = batch.column("text_vec")
    pick = np.asarray(batch.column("sample_key").to_numpy(zero_copy_only=False)) < bound
    pick &= np.asarray(text.is_valid())
    mask = pa.array(pick)
    ids, img = batch.column("image_id").filter(mask), batch.column("embedding").filter(mask)
    sim = np.einsum("ij,ij->i", arrow_vectors(img, dim, dtype), arrow_vectors(text.filter(mask), dim, dtype))
    window = pa.array((sim >= sim_min) & (sim <= sim_max))
    return pa.RecordBatch.from_arrays([_one_chunk(ids.filter(window)), _one_chunk(img.filter(window))],
                                      schema=SAMPLE_SCHEMA)


def _one_chunk(arr):
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def min_cap(rank: Any, caps: Sequence[int], where: Callable[[Any, int, Any], Any] = np.where, none: Any = -1) -> Any:
    """The nested cap rule: the smallest cap t with rank < t, else `none`. A row is in the
    subset of cap t iff min_cap <= t, so the subsets are nested by construction.

    The one definition for every caller: it uses only `rank < cap` and `where(cond, a, b)`,
    so it runs on numpy arrays (np.where, `none` -1: the single-process benchmark) and on
    Spark columns (jobs/lib/cluster_rows.py passes F.when(cond, a).otherwise(b) and a null), where
    it stays one SQL expression (no Python pass; the RAPIDS Accelerator can run it)."""
    out = none
    for cap in sorted(caps, reverse=True):
        out = where(rank < cap, cap, out)
    return out

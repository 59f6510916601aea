"""Semantic dedup's expensive step, inside one k-means cluster: each item's most similar item
among those ranked before it (SemDeDup's rule, as NeMo Curator runs it). Stored once, it turns
any cosine threshold into a cheap filter: an item is a duplicate when its earlier neighbour is
at least that similar. No pair list is ever built.

The clusters are two-level: a coarse k-means routes every row to a group, and each group is
split by its own k-means into clusters of about points_per_cluster rows. Routing then costs
rows x sqrt(K) instead of rows x K (K = rows / points_per_cluster, so flat routing grew with
the square of the rows), and the fine fits run on the executors, one group per task."""
from __future__ import annotations

import numpy as np
import pandas as pd

from realsyn.udfs.vector_codec import from_bytes
from realsyn.udfs.vector_search import fit_kmeans, nearest

NEIGHBOURS_DDL = "{key} string, dedup_cluster int, dedup_subcluster int, rank long, neighbour string, max_sim double"


def earlier_neighbours(vectors: np.ndarray, block: int = 2048,
                       max_cells: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """For row i of (rank-ordered, normalised) vectors: the index of the most similar row
    j < i and that cosine; -1 and -inf for row 0. Blocked: at most max_cells similarities
    (64 MiB) at a time, however large the cluster."""
    n = len(vectors)
    block = max(1, min(block, max_cells // max(n, 1)))
    best = np.full(n, -1, dtype=np.int64)
    sims_out = np.full(n, -np.inf, dtype=np.float64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = vectors[start:stop] @ vectors[:stop].T
        rows = np.arange(start, stop)
        sims[np.arange(stop)[None, :] >= rows[:, None]] = -np.inf   # only rows ranked earlier
        arg = sims.argmax(axis=1)
        top = sims[np.arange(stop - start), arg]
        has = np.isfinite(top)
        best[start:stop] = np.where(has, arg, -1)
        sims_out[start:stop] = top
    return best, sims_out


def split_group(vectors: np.ndarray, points_per_cluster: int, iters: int, seed: int) -> np.ndarray:
    """The fine level of the two-level clustering: k-means of one coarse group into clusters of
    about points_per_cluster rows (one thread, seeded: the same rows in the same order give the
    same split on any worker). Returns each row's fine cluster."""
    k = len(vectors) // points_per_cluster       # as K = rows // points_per_cluster
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int32)
    centroids = fit_kmeans(vectors, k, iters, seed, threads=1)
    return nearest(vectors, centroids).astype(np.int32)


def group_neighbours(vectors: np.ndarray, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """earlier_neighbours inside each fine cluster of one (rank-ordered) group; indices are the
    group's rows. Rows keep their order within a fine cluster, so "earlier" still means ranked before."""
    best = np.full(len(vectors), -1, dtype=np.int64)
    sims = np.full(len(vectors), -np.inf, dtype=np.float64)
    order = np.argsort(fine, kind="stable")
    cuts = np.flatnonzero(np.diff(fine[order])) + 1
    for rows in np.split(order, cuts):
        idx, top = earlier_neighbours(vectors[rows])
        best[rows] = np.where(idx >= 0, rows[np.maximum(idx, 0)], -1)
        sims[rows] = top
    return best, sims


def cluster_neighbours_fn(key: str, dim: int, dtype: str, points_per_cluster: int, iters: int, seed: int):
    """applyInPandas body over one coarse dedup group (columns key, embedding, rank,
    dedup_cluster): split into fine clusters, then score each row against the rows ranked
    before it in its fine cluster. Returns key, dedup_cluster, dedup_subcluster, rank,
    neighbour and max_sim (both null for a fine cluster's first item)."""
    def run(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(["rank", key], kind="stable")
        vecs = from_bytes(group["embedding"].tolist(), dim, dtype)
        fine = split_group(vecs, points_per_cluster, iters, seed)
        idx, sims = group_neighbours(vecs, fine)
        ids = group[key].to_numpy()
        return pd.DataFrame({
            key: ids, "dedup_cluster": group["dedup_cluster"].to_numpy(), "dedup_subcluster": fine,
            "rank": group["rank"].to_numpy(),
            "neighbour": [ids[j] if j >= 0 else None for j in idx],
            "max_sim": [float(s) if np.isfinite(s) else None for s in sims]})
    return run

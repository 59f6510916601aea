"""Semantic dedup's expensive step, inside one k-means cluster: each item's most similar item
among those ranked before it (SemDeDup's rule, as NeMo Curator runs it). Stored once, it turns
any cosine threshold into a cheap filter: an item is a duplicate when its earlier neighbour is
at least that similar. No pair list is ever built.

The clusters are two-level: a coarse k-means routes every row to a group, and each group is
split by its own k-means into clusters of about points_per_cluster rows. Routing then costs
rows x sqrt(K) instead of rows x K (K = rows / points_per_cluster, so flat routing grew with
the square of the rows), and the fine fits run on the executors, one group per task.

Both levels' centroids are kept, so an increment assigns only the new rows (nearest coarse
centroid, then nearest fine centroid of that group: what the fit gave the old rows) and
scores only the fine clusters the new rows enter: each new row against every row ranked
before it, each old row against the new rows ranked before it (updated_neighbours)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from realsyn.udfs.vector_codec import from_bytes
from realsyn.udfs.vector_search import fit_kmeans, nearest

NEIGHBOURS_DDL = "{key} string, dedup_cluster int, dedup_subcluster int, rank long, neighbour string, max_sim double"
# The fit's output: neighbour rows, and one row per fine centroid with a null key.
SCORED_DDL = NEIGHBOURS_DDL + ", centroid binary"
CENTROID_COLUMNS = ["dedup_cluster", "dedup_subcluster", "centroid"]


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


def split_group(vectors: np.ndarray, points_per_cluster: int, iters: int,
                seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The fine level of the two-level clustering: k-means of one coarse group into clusters of
    about points_per_cluster rows (one thread, seeded: the same rows in the same order give the
    same split on any worker). Returns each row's fine cluster and the fine centroids (None
    for a group kept whole: every row, old or new, is then in fine cluster 0)."""
    k = len(vectors) // points_per_cluster       # as K = rows // points_per_cluster
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int32), None
    centroids = fit_kmeans(vectors, k, iters, seed, threads=1)
    return fine_clusters(vectors, centroids), centroids


def fine_clusters(vectors: np.ndarray, centroids: np.ndarray | None) -> np.ndarray:
    if centroids is None or not len(centroids):
        return np.zeros(len(vectors), dtype=np.int32)
    return nearest(vectors, centroids).astype(np.int32)


def updated_neighbours(vectors: np.ndarray, is_new: np.ndarray, best: np.ndarray, sims: np.ndarray,
                       max_cells: int = 1 << 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """earlier_neighbours of one fine cluster after rows were added, from the old rows' stored
    result: vectors in keep order (rank, id), is_new marks the added rows, best / sims hold
    the old rows' stored neighbour index and cosine (-1 / -inf for none; ignored for new
    rows). Old-against-old is never scored again: a new row is scored against every row
    before it, an old row only against the new rows before it. Returns (best, sims, changed):
    equal to earlier_neighbours over all rows (ties: the earliest row, as there)."""
    best, sims = best.astype(np.int64).copy(), sims.astype(np.float64).copy()
    new = np.flatnonzero(is_new)
    changed = is_new.astype(bool).copy()
    if not len(new):
        return best, sims, changed
    n = len(vectors)
    cand = np.full(n, -1, dtype=np.int64)          # each old row's best new row before it
    cand_sim = np.full(n, -np.inf)
    block = max(1, max_cells // max(n, 1))
    for start in range(0, len(new), block):
        rows = new[start:start + block]
        s = vectors[rows] @ vectors.T                          # (new rows, all rows)
        earlier = np.where(np.arange(n)[None, :] < rows[:, None], s, -np.inf)
        arg = earlier.argmax(axis=1)
        top = earlier[np.arange(len(rows)), arg]
        best[rows] = np.where(np.isfinite(top), arg, -1)
        sims[rows] = top
        # The same products, seen from the old rows after each new row.
        later = np.where(np.arange(n)[None, :] > rows[:, None], s, -np.inf)
        col = later.argmax(axis=0)
        col_top = later[col, np.arange(n)]
        better = col_top > cand_sim                            # strictly: the earlier new row wins ties
        cand = np.where(better, rows[col], cand)
        cand_sim = np.where(better, col_top, cand_sim)
    old = ~is_new.astype(bool)
    wins = old & np.isfinite(cand_sim) & ((cand_sim > sims) | ((cand_sim == sims) & (cand < best)))
    best = np.where(wins, cand, best)
    sims = np.where(wins, cand_sim, sims)
    return best, sims, changed | wins


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
        fine, centroids = split_group(vecs, points_per_cluster, iters, seed)
        idx, sims = group_neighbours(vecs, fine)
        ids = group[key].to_numpy()
        fits = [] if centroids is None else [c.astype("<f4").tobytes() for c in centroids]
        m = len(fits)                                       # one more row per fine centroid, key null
        cluster = int(group["dedup_cluster"].iloc[0])
        return pd.DataFrame({
            key: [*ids, *[None] * m], "dedup_cluster": [*group["dedup_cluster"].tolist(), *[cluster] * m],
            "dedup_subcluster": [*fine.tolist(), *range(m)], "rank": [*group["rank"].tolist(), *[None] * m],
            "neighbour": [*(ids[j] if j >= 0 else None for j in idx), *[None] * m],
            "max_sim": [*(float(s) if np.isfinite(s) else None for s in sims), *[None] * m],
            "centroid": [*[None] * len(ids), *fits]})
    return run


def fine_assign_fn(key: str, dim: int, dtype: str):
    """cogroup body per coarse group: (the group's new rows: key, embedding, rank,
    dedup_cluster; its stored fine centroids: dedup_subcluster, centroid) -> the new rows
    with their fine cluster (0 in a group kept whole)."""
    def run(rows: pd.DataFrame, cents: pd.DataFrame) -> pd.DataFrame:
        if rows.empty:
            return rows.assign(dedup_subcluster=pd.Series(dtype="int32"))
        cents = cents.sort_values("dedup_subcluster")
        centroids = from_bytes(cents["centroid"].tolist(), dim) if len(cents) else None
        fine = fine_clusters(from_bytes(rows["embedding"].tolist(), dim, dtype), centroids)
        return rows.assign(dedup_subcluster=fine)
    return run


def update_fn(key: str, dim: int, dtype: str):
    """applyInPandas body per fine cluster the new rows enter: its old rows (stored neighbour
    and max_sim) and new rows (is_new). Returns the neighbour rows that are new or changed."""
    def run(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(["rank", key], kind="stable").reset_index(drop=True)
        ids = group[key].to_numpy()
        pos = {k: i for i, k in enumerate(ids)}
        best = np.array([pos.get(nb, -1) if isinstance(nb, str) else -1 for nb in group["neighbour"]])
        sims = group["max_sim"].astype("float64").fillna(-np.inf).to_numpy()
        is_new = group["is_new"].to_numpy(dtype=bool)
        idx, top, changed = updated_neighbours(from_bytes(group["embedding"].tolist(), dim, dtype), is_new, best, sims)
        out = group[changed]
        return pd.DataFrame({
            key: out[key].to_numpy(), "dedup_cluster": out["dedup_cluster"].to_numpy(),
            "dedup_subcluster": out["dedup_subcluster"].to_numpy(), "rank": out["rank"].to_numpy(),
            "neighbour": [ids[j] if j >= 0 else None for j in idx[changed]],
            "max_sim": [float(s) if np.isfinite(s) else None for s in top[changed]]})
    return run

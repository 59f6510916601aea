"""Semantic dedup's expensive step, inside one k-means cluster: each item's most similar item
among those ranked before it (SemDeDup's rule, as NeMo Curator runs it). Stored once, it turns
any cosine threshold into a cheap filter: an item is a duplicate when its earlier neighbour is
at least that similar. No pair list is ever built."""
from __future__ import annotations

import numpy as np
import pandas as pd

from realsyn.udfs.vector_codec import from_bytes

NEIGHBOURS_DDL = "{key} string, dedup_cluster int, rank long, neighbour string, max_sim double"


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


def cluster_neighbours_fn(key: str, dim: int, dtype: str):
    """applyInPandas body over one dedup cluster (columns key, embedding, rank, dedup_cluster):
    key, dedup_cluster, rank, neighbour (null for the cluster's first item), max_sim (null likewise)."""
    def run(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(["rank", key], kind="stable")
        vecs = from_bytes(group["embedding"].tolist(), dim, dtype)
        idx, sims = earlier_neighbours(vecs)
        ids = group[key].to_numpy()
        return pd.DataFrame({
            key: ids, "dedup_cluster": group["dedup_cluster"].to_numpy(), "rank": group["rank"].to_numpy(),
            "neighbour": [ids[j] if j >= 0 else None for j in idx],
            "max_sim": [float(s) if np.isfinite(s) else None for s in sims]})
    return run

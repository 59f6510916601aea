"""Near-duplicate pairs by embedding cosine, searched only inside a k-means cluster (no N^2)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from realsyn.udfs.vector_codec import from_bytes


def pairs_above(ids: list[str], vectors: np.ndarray, threshold: float, block: int = 2048) -> list[tuple[str, str]]:
    """All (a, b) with a < b (by position) and cosine >= threshold, blocked to bound memory."""
    out = []
    n = len(ids)
    for start in range(0, n, block):
        sims = vectors[start:start + block] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows, cols):
            i = start + r
            if i < c:
                out.append((ids[i], ids[c]))
    return out


def cluster_pairs_fn(key: str, dim: int, dtype: str, threshold: float):
    """applyInPandas body over one cluster: its near-duplicate pairs."""
    def run(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(key)
        vecs = from_bytes(group["embedding"].tolist(), dim, dtype)
        pairs = pairs_above(group[key].tolist(), vecs, threshold)
        return pd.DataFrame(pairs, columns=["x", "y"])
    return run

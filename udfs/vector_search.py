"""faiss pieces of hierarchical retrieval: k-means fit, nearest centroid, and exact top-k
inside one cluster. Pure functions over numpy arrays (float32, L2-normalised rows)."""
from __future__ import annotations

import numpy as np


def faiss_module(threads: int = 1):
    import faiss
    faiss.omp_set_num_threads(threads)
    return faiss


def fit_kmeans(vectors: np.ndarray, k: int, iters: int, seed: int, threads: int = 1) -> np.ndarray:
    """Spherical k-means (inner product on normalised vectors); returns normalised centroids."""
    faiss = faiss_module(threads)
    n, d = vectors.shape
    k = max(1, min(k, n))
    # min_points_per_centroid=1: faiss only warns (on stderr, once per fit) below that many
    # points per centroid; the sample size is the conf's choice, and the two-level fits
    # would print one warning per coarse group.
    km = faiss.Kmeans(d, k, niter=iters, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=max(256, (n + k - 1) // k), min_points_per_centroid=1)
    km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    c = km.centroids.astype(np.float32)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def nearest(vectors: np.ndarray, centroids: np.ndarray, threads: int = 1) -> np.ndarray:
    """Index of each row's most similar centroid (exact): for centroid sets that are not worth
    caching (nearest_clusters in centroid_levels.py serves the broadcast ones)."""
    index = faiss_module(threads).IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1][:, 0]


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of each query over corpus (dense products, blocked).

    Returns (scores, indices), each (n_queries, min(k, len(corpus))), best first; ties by index.
    """
    k = min(k, len(corpus))
    scores_out = np.empty((len(queries), k), dtype=np.float32)
    idx_out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        sims = queries[start:start + block] @ corpus.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(sims.shape[1]), (len(sims), 1))
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        idx_out[start:start + block] = np.take_along_axis(part, order, axis=1)
        scores_out[start:start + block] = np.take_along_axis(part_scores, order, axis=1)
    return scores_out, idx_out


def search_clusters(q_clusters: np.ndarray, q_vecs: np.ndarray, c_clusters: np.ndarray,
                    c_vecs: np.ndarray, k: int, min_score: float = -1.0):
    """Exact top-k of every query among the corpus rows of its own cluster.

    q_clusters / c_clusters: the cluster of each query / corpus row. One dense product per
    cluster present on both sides. Returns (query rows, corpus rows, scores), flat, best
    first within a query; pairs under min_score are dropped.
    """
    q_order = np.argsort(q_clusters, kind="stable")
    c_order = np.argsort(c_clusters, kind="stable")
    qc, cc = q_clusters[q_order], c_clusters[c_order]
    q_ids, q_start = np.unique(qc, return_index=True)
    q_end = np.append(q_start[1:], len(qc))
    c_lo, c_hi = np.searchsorted(cc, q_ids, "left"), np.searchsorted(cc, q_ids, "right")
    rows, cols, scores = [], [], []
    for a, b, lo, hi in zip(q_start, q_end, c_lo, c_hi):
        if hi == lo:
            continue
        qi, ci = q_order[a:b], c_order[lo:hi]
        s, j = top_k(q_vecs[qi], c_vecs[ci], k)
        rows.append(np.repeat(qi, s.shape[1]))
        cols.append(ci[j.reshape(-1)])
        scores.append(s.reshape(-1))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows, cols, scores = np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)
    keep = scores >= min_score
    return rows[keep], cols[keep], scores[keep]

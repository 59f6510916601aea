"""faiss pieces of hierarchical retrieval: k-means fit, nearest-centroid routing, and exact
top-k inside one cluster. Pure functions over numpy arrays (float32, L2-normalised rows)."""
from __future__ import annotations

import functools
import hashlib

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
    km = faiss.Kmeans(d, k, niter=iters, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=max(256, (n + k - 1) // k))
    km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    c = km.centroids.astype(np.float32)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=4)
def _centroid_index(key: str, blob: bytes, d: int, use_gpu: bool):
    faiss = faiss_module(1)
    centroids = np.frombuffer(blob, dtype="<f4").reshape(-1, d)
    index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(centroids))
    if use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


def nearest_centroids(vectors: np.ndarray, centroids_blob: bytes, d: int, probes: int,
                      use_gpu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(scores, cluster ids) of the `probes` nearest centroids of each row; one index per worker."""
    key = hashlib.sha1(centroids_blob).hexdigest()
    index = _centroid_index(key, centroids_blob, d, use_gpu)
    probes = min(probes, index.ntotal)
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), probes)


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

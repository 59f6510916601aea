"""Retrieval's centroids in two levels: K fine k-means centroids, fitted inside G coarse groups
(G = 1: one flat level, searched exactly).

A row's cluster is its nearest fine centroid within its nearest coarse group. With G = sqrt(K)
both the routing (G + K/G inner products per row instead of K) and the fit (sample x (G + K/G)
x iterations instead of sample x K) grow with sqrt(K), where one flat level grew with K, and K
grows with the sentences. An image's `probes` clusters are the nearest fine centroids inside
its `coarse_probes` nearest groups. The search is a faiss IVF index whose lists are the groups,
each holding the fine centroids fitted in it (preassigned, not re-routed)."""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from realsyn.udfs.task_device import assigned_gpu
from realsyn.udfs.vector_search import faiss_module, fit_kmeans, nearest


@dataclass(frozen=True)
class CentroidLevels:
    """The broadcast form: little-endian bytes, so it pickles compactly to every task."""
    fine: bytes      # K x dim float32, L2-normalised
    coarse: bytes    # G x dim float32; empty for one flat level
    group: bytes     # K int32: the coarse group each fine centroid was fitted in
    dim: int

    @classmethod
    def from_arrays(cls, fine: np.ndarray, coarse: np.ndarray | None = None,
                    group: np.ndarray | None = None) -> "CentroidLevels":
        dim = fine.shape[1]
        coarse = np.zeros((0, dim), np.float32) if coarse is None else coarse
        group = np.zeros(len(fine), np.int32) if group is None else group
        return cls(fine.astype("<f4").tobytes(), coarse.astype("<f4").tobytes(), group.astype("<i4").tobytes(), dim)

    @classmethod
    def flat(cls, fine: bytes, dim: int) -> "CentroidLevels":
        return cls(fine, b"", np.zeros(len(fine) // (4 * dim), "<i4").tobytes(), dim)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.frombuffer(self.fine, "<f4").reshape(-1, self.dim),
                np.frombuffer(self.coarse, "<f4").reshape(-1, self.dim),
                np.frombuffer(self.group, "<i4"))

    @property
    def clusters(self) -> int:
        return len(self.fine) // (4 * self.dim)

    @property
    def groups(self) -> int:
        return max(1, len(self.coarse) // (4 * self.dim))

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.fine, self.coarse, self.group):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()


def coarse_groups(k: int, min_clusters: int) -> int:
    """G for K clusters: sqrt(K) (G + K/G is smallest there) from min_clusters up; below it (or
    min_clusters 0) one flat level, whose exact search is cheap at that size."""
    if min_clusters <= 0 or k < min_clusters:
        return 1
    return math.isqrt(k - 1) + 1


def quotas(k: int, rows: np.ndarray) -> np.ndarray:
    """Fine clusters per group, in proportion to the group's sample rows: at least one, at most
    its rows. Their sum is K up to rounding."""
    return np.minimum(np.maximum(1, np.round(k * rows / rows.sum())), rows).astype(np.int64)


def fit_levels(sample: np.ndarray, k: int, groups: int, iters: int, seed: int, threads: int = 1) -> CentroidLevels:
    """Spherical k-means in two levels: G coarse centroids on the sample, then each coarse
    group's sample rows split into its share of the K clusters. A coarse centroid that no
    sample row chose is dropped (its group would hold no cluster to route to)."""
    k = max(1, min(k, len(sample)))
    if groups <= 1:
        return CentroidLevels.from_arrays(fit_kmeans(sample, k, iters, seed, threads))
    coarse = fit_kmeans(sample, groups, iters, seed, threads)
    route = nearest(sample, coarse, threads)
    rows = np.bincount(route, minlength=len(coarse))
    live = np.flatnonzero(rows)
    fine, group = [], []
    for g, (old, quota) in enumerate(zip(live, quotas(k, rows[live]))):
        fine.append(fit_kmeans(sample[route == old], int(quota), iters, seed, threads))
        group.append(np.full(len(fine[-1]), g, np.int32))
    return CentroidLevels.from_arrays(np.concatenate(fine), coarse[live], np.concatenate(group))


@functools.lru_cache(maxsize=4)
def _index(levels: CentroidLevels, gpu: str | None):
    faiss = faiss_module(1)
    fine, coarse, group = (np.ascontiguousarray(a) for a in levels.arrays())
    if levels.groups == 1:
        index = faiss.IndexFlatIP(levels.dim)
        index.add(fine)
    else:
        from faiss.contrib.ivf_tools import add_preassigned
        quantizer = faiss.IndexFlatIP(levels.dim)
        quantizer.add(coarse)
        index = faiss.IndexIVFFlat(quantizer, levels.dim, len(coarse), faiss.METRIC_INNER_PRODUCT)
        index.is_trained = True            # the lists are the fitted groups, not trained here
        add_preassigned(index, fine, group.astype(np.int64))
        index.referenced_objects = [quantizer]   # the index does not own its quantizer
    if gpu is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), int(gpu), index)
    return index


def nearest_clusters(vectors: np.ndarray, levels: CentroidLevels, probes: int,
                     coarse_probes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(scores, cluster ids) of each row's `probes` nearest clusters, found among the fine
    centroids of its `coarse_probes` nearest groups (all of them for one flat level), best
    first; -1 fills slots when those groups hold fewer clusters. One index per worker, on the
    GPU Spark assigned to the task when faiss has GPU support."""
    faiss = faiss_module(1)
    index = _index(levels, assigned_gpu())
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    probes = int(min(probes, levels.clusters))
    if levels.groups == 1:
        return index.search(x, probes)
    return index.search(x, probes, params=faiss.SearchParametersIVF(nprobe=int(min(coarse_probes, levels.groups))))

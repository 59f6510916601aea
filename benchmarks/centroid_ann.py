"""Routing rows to the nearest of K centroids: faiss's exact flat search against the ANN
indexes one could put over the centroids (an IVF with sqrt(K) lists, HNSW), side by side in
one run on one thread. Why semantic dedup's clusters became two-level instead of an ANN over
one level (docs/decisions.md).

The centroids are k-means centroids of the data (topic mixtures on the sphere, as
benchmarks/scale.py draws them). For each ANN setting it prints the share of queries whose
nearest centroid it finds (top1) and its speed over the flat search. Ends with
`RESULT ivf_top1_at_flat_speed=... hnsw_top1_at_flat_speed=...`: the best top-1 each kind of
index reaches while at least as fast as the flat search (0 if none is), at the largest K.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_check import timed  # noqa: E402
from benchmarks.scale import topic_vectors  # noqa: E402
from realsyn.udfs.vector_search import faiss_module, fit_kmeans  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--clusters", type=int, nargs="+", default=[10_000, 40_000])
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--points-per-centroid", type=int, default=4, help="k-means fit sample per centroid")
    a = ap.parse_args()
    faiss = faiss_module(1)
    rng = np.random.default_rng(0)
    best_ivf = best_hnsw = 0.0
    for k in a.clusters:
        data = topic_vectors(rng, a.points_per_centroid * k + a.queries, a.dim, max(50, k // 10))
        centroids = fit_kmeans(data[a.queries:], k, 5, 1)
        queries = data[:a.queries]
        flat = faiss.IndexFlatIP(a.dim)
        flat.add(centroids)
        (_, truth), flat_s = timed(lambda: flat.search(queries, 1))
        truth = truth[:, 0]
        print(f"K={k:,} d={a.dim} queries={a.queries:,}: flat {flat_s:.2f} s")
        lists = int(round(np.sqrt(k)))
        quantizer = faiss.IndexFlatIP(a.dim)
        quantizer.add(fit_kmeans(centroids, lists, 10, 1))
        ivf = faiss.IndexIVFFlat(quantizer, a.dim, lists, faiss.METRIC_INNER_PRODUCT)
        ivf.is_trained = True
        ivf.add(centroids)
        hnsw = faiss.IndexHNSWFlat(a.dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        _, build_s = timed(lambda: hnsw.add(centroids))
        settings = [("ivf", f"nprobe={p}", ivf, lambda p=p: setattr(ivf, "nprobe", p)) for p in (8, 16, 32)]
        settings += [("hnsw", f"efSearch={e}", hnsw, lambda e=e: setattr(hnsw.hnsw, "efSearch", e))
                     for e in (32, 64, 128)]
        for kind, label, index, configure in settings:
            configure()
            (_, ids), s = timed(lambda: index.search(queries, 1))
            top1 = float((ids[:, 0] == truth).mean())
            extra = f" (build {build_s:.1f} s)" if kind == "hnsw" else ""
            print(f"  {kind} {label}: top1={top1:.4f} speed_over_flat={flat_s / s:.2f}{extra}")
            if s <= flat_s and k == a.clusters[-1]:
                if kind == "ivf":
                    best_ivf = max(best_ivf, top1)
                else:
                    best_hnsw = max(best_hnsw, top1)
    print(f"RESULT ivf_top1_at_flat_speed={best_ivf:.4f} hnsw_top1_at_flat_speed={best_hnsw:.4f}")


if __name__ == "__main__":
    main()

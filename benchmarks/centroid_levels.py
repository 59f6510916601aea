"""Retrieval's centroids, one flat level against two levels (udfs/centroid_levels.py), side by
side in one run on the same vectors: the k-means fit, the routing of every sentence to its
cluster and of every image to its probes (one thread, as in a task), and recall@k of the
hierarchical retrieval against exact search.

Data: benchmarks/retrieval.py's anisotropic topic mixtures on the sphere. K = sentences / the
conf's retrieval.sentences_per_cluster, fitted on a random sample of --kmeans-sample
rows with the conf's iterations; two levels use sqrt(K) coarse groups. Recall: an image's top-k
among the sentences of its probed clusters (probes from the conf) against its exact top-k over
all sentences, on --exact-sample images. Prints, last,
`RESULT fit_speedup=... route_speedup=... probe_speedup=... recall_flat=... recall_two_level=...`
(speedups: flat seconds over two-level seconds; recall at the conf's retrieval.coarse_probes).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.retrieval import sphere_mixture  # noqa: E402
from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.udfs.centroid_levels import coarse_groups, fit_levels, nearest_clusters  # noqa: E402
from realsyn.udfs.vector_search import faiss_module  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def recall_at_k(sents, sent_cluster, imgs, probed, truth, k) -> float:
    """Share of each image's exact top-k found among the sentences of its probed clusters."""
    order = np.argsort(sent_cluster, kind="stable")
    lo = np.searchsorted(sent_cluster[order], np.arange(sent_cluster.max() + 2))
    hits = []
    for i, clusters in enumerate(probed):
        members = np.concatenate([order[lo[c]:lo[c + 1]] for c in clusters if c >= 0])
        top = members[np.argsort(-(sents[members] @ imgs[i]), kind="stable")[:k]]
        hits.append(len(set(top.tolist()) & set(truth[i].tolist())) / k)
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=100_000, help="images routed (timed)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--kmeans-sample", type=int, default=200_000)
    ap.add_argument("--exact-sample", type=int, default=2000, help="images whose recall is measured")
    ap.add_argument("--threads", type=int, default=2, help="faiss threads of the driver's fit")
    a = ap.parse_args()
    cfg = load_config("local")
    r = "retrieval."
    per_cluster, iters, probes = cfg.get(r + "sentences_per_cluster"), cfg.get("kmeans.iters"), cfg.get(r + "probes")
    coarse_probes, k = cfg.get(r + "coarse_probes"), cfg.get(r + "top_k")

    rng = np.random.default_rng(0)
    n_topics = max(50, a.sentences // 2000)
    centers = rng.standard_normal((n_topics, a.dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = rng.uniform(0.02, 0.08, (n_topics, a.dim)).astype(np.float32)
    sents = sphere_mixture(rng, a.sentences, a.dim, centers, spread)
    imgs = sphere_mixture(rng, a.images, a.dim, centers, spread)
    sample = sents[rng.choice(len(sents), min(len(sents), a.kmeans_sample), replace=False)]
    K = max(1, round(a.sentences / per_cluster))
    checked = imgs[:a.exact_sample]
    exact = faiss_module(a.threads).IndexFlatIP(a.dim)
    exact.add(sents)
    _, truth = exact.search(checked, k)

    rows, results = [], {}
    for label, groups in (("flat", 1), ("two-level", coarse_groups(K, 1))):
        levels, fit_s = timed(lambda: fit_levels(sample, K, groups, iters, 1, threads=a.threads))
        (_, sent_cluster), route_s = timed(lambda: nearest_clusters(sents, levels, 1))
        sweep = [coarse_probes] if groups == 1 else sorted({1, 2, coarse_probes, 2 * coarse_probes})
        for c in sweep:
            (_, probed), probe_s = timed(lambda: nearest_clusters(imgs, levels, probes, c))
            recall = recall_at_k(sents, sent_cluster[:, 0], checked, probed[:a.exact_sample], truth, k)
            rows.append((label, levels.clusters, levels.groups, c, fit_s, route_s, probe_s, recall))
            if c == coarse_probes:
                results[label] = (fit_s, route_s, probe_s, recall)
    print(f"sentences={a.sentences:,} images={a.images:,} d={a.dim} probes={probes} k={k} "
          f"kmeans sample={len(sample):,} iterations={iters}")
    print("| centroids | K | groups | coarse probes | fit (s) | route sentences (s) | probe images (s) | recall@k |")
    print("|---|---|---|---|---|---|---|---|")
    for label, kk, g, c, fit_s, route_s, probe_s, recall in rows:
        print(f"| {label} | {kk:,} | {g} | {c if g > 1 else '-'} | {fit_s:.1f} | {route_s:.1f} | {probe_s:.2f} | {recall:.3f} |")
    flat, two = results["flat"], results["two-level"]
    print(f"RESULT fit_speedup={flat[0] / two[0]:.1f} route_speedup={flat[1] / two[1]:.1f} "
          f"probe_speedup={flat[2] / two[2]:.1f} recall_flat={flat[3]:.3f} recall_two_level={two[3]:.3f}")


if __name__ == "__main__":
    main()

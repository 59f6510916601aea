import numpy as np

from realsyn.udfs.cluster_plan import plan_buckets
from realsyn.udfs.vector_search import fit_kmeans, nearest_centroids, top_k


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_k_matches_brute_force_sort():
    rng = np.random.default_rng(0)
    q, c = unit(rng, 50, 16), unit(rng, 300, 16)
    scores, idx = top_k(q, c, 5, block=7)
    full = q @ c.T
    expect = np.argsort(-full, axis=1, kind="stable")[:, :5]
    assert np.array_equal(idx, expect)
    assert np.allclose(scores, np.take_along_axis(full, expect, axis=1))


def test_top_k_with_fewer_rows_than_k():
    rng = np.random.default_rng(1)
    scores, idx = top_k(unit(rng, 3, 8), unit(rng, 2, 8), 5)
    assert idx.shape == (3, 2) and (scores[:, 0] >= scores[:, 1]).all()


def test_kmeans_is_deterministic_and_routes_to_nearest():
    rng = np.random.default_rng(2)
    x = unit(rng, 2000, 16)
    c1, c2 = fit_kmeans(x, 20, 10, seed=3), fit_kmeans(x, 20, 10, seed=3)
    assert np.array_equal(c1, c2) and c1.shape == (20, 16)
    _, ids = nearest_centroids(x[:100], c1.astype("<f4").tobytes(), 16, probes=2)
    assert np.array_equal(ids[:, 0], np.argmax(x[:100] @ c1.T, axis=1))


def test_plan_splits_giants_and_packs_small_clusters():
    sizes = {0: 1000, 1: 10, 2: 20, 3: 30, 4: 5}
    plan = plan_buckets(sizes, max_rows=300, target_rows=40)
    first, subs = plan[0]
    assert subs == 4
    small_buckets = {plan[c][0] for c in (1, 2, 3, 4)}
    assert len(small_buckets) < 4 and all(b >= first + subs for b in small_buckets)
    load = {}
    for c in (1, 2, 3, 4):
        load[plan[c][0]] = load.get(plan[c][0], 0) + sizes[c]
    assert max(load.values()) <= 40

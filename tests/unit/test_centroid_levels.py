"""Two-level centroids: the fit, and the search against its definition in numpy."""
import numpy as np

from realsyn.udfs.centroid_levels import CentroidLevels, coarse_groups, fit_levels, nearest_clusters, quotas


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def topics(rng, n, d, n_topics=30):
    centers = unit(rng, n_topics, d)
    x = centers[rng.integers(0, n_topics, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_coarse_groups_are_sqrt_k_from_the_threshold_up():
    assert coarse_groups(4095, 4096) == 1 and coarse_groups(10**6, 0) == 1
    assert coarse_groups(4096, 4096) == 64 and coarse_groups(4097, 4096) == 65


def test_quotas_share_k_by_rows_within_bounds():
    rows = np.array([1000, 10, 1, 3000])
    q = quotas(400, rows)
    assert (q >= 1).all() and (q <= rows).all() and abs(int(q.sum()) - 400) <= len(rows)
    assert q[3] > q[0] > q[1]


def test_fit_is_deterministic_and_every_group_holds_clusters():
    x = topics(np.random.default_rng(0), 6000, 16)
    a, b = fit_levels(x, 120, 11, 10, seed=3), fit_levels(x, 120, 11, 10, seed=3)
    assert a == b and a.digest == b.digest
    fine, coarse, group = a.arrays()
    assert abs(a.clusters - 120) <= 11 and a.groups == len(coarse) <= 11
    assert set(group.tolist()) == set(range(a.groups))
    assert np.allclose(np.linalg.norm(fine, axis=1), 1, atol=1e-5)


def test_one_probe_is_the_nearest_centroid_of_the_nearest_group():
    rng = np.random.default_rng(1)
    x = topics(rng, 6000, 16)
    levels = fit_levels(x, 120, 11, 10, seed=3)
    fine, coarse, group = levels.arrays()
    q = topics(rng, 500, 16)
    best_group = np.argmax(q @ coarse.T, axis=1)
    sims = np.where(group[None, :] == best_group[:, None], q @ fine.T, -np.inf)
    _, ids = nearest_clusters(q, levels, 1)
    assert np.array_equal(ids[:, 0], np.argmax(sims, axis=1))


def test_probing_every_group_is_the_exact_search():
    rng = np.random.default_rng(2)
    levels = fit_levels(topics(rng, 6000, 16), 120, 11, 10, seed=3)
    fine, _, _ = levels.arrays()
    q = topics(rng, 300, 16)
    scores, ids = nearest_clusters(q, levels, 5, coarse_probes=levels.groups)
    assert np.array_equal(ids, np.argsort(-(q @ fine.T), axis=1, kind="stable")[:, :5])
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_one_flat_level_is_exact_and_too_few_clusters_fill_with_minus_one():
    rng = np.random.default_rng(3)
    x = unit(rng, 500, 8)
    flat = fit_levels(x, 10, 1, 5, seed=1)
    assert flat.groups == 1 and flat.arrays()[1].shape == (0, 8)
    _, ids = nearest_clusters(x, flat, 2)
    assert np.array_equal(ids[:, 0], np.argmax(x @ flat.arrays()[0].T, axis=1))
    two = fit_levels(x, 10, 4, 5, seed=1)
    smallest = np.bincount(two.arrays()[2]).min()
    _, ids = nearest_clusters(x, two, smallest + 1, coarse_probes=1)
    assert (ids == -1).any()          # a row whose group holds fewer clusters than it probes


def test_digest_tells_apart_levels_with_the_same_fine_centroids():
    fine = unit(np.random.default_rng(4), 6, 4)
    coarse = unit(np.random.default_rng(5), 2, 4)
    a = CentroidLevels.from_arrays(fine, coarse, np.array([0, 0, 0, 1, 1, 1]))
    b = CentroidLevels.from_arrays(fine, coarse, np.array([0, 0, 1, 1, 1, 1]))
    assert a.digest != b.digest and a.clusters == b.clusters == 6

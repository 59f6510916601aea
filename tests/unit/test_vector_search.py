import numpy as np

import pyarrow as pa
import pytest

from realsyn.udfs.cluster_plan import plan_pieces
from realsyn.udfs.vector_codec import arrow_vectors
from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
from realsyn.udfs.vector_search import fit_kmeans, search_clusters, top_k


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
    _, ids = nearest_clusters(x[:100], CentroidLevels.flat(c1.astype("<f4").tobytes(), 16), probes=2)
    assert np.array_equal(ids[:, 0], np.argmax(x[:100] @ c1.T, axis=1))


def test_plan_splits_giants_and_packs_small_clusters():
    layout = [("f1", 0, 1000), ("f1", 1, 10), ("f1", 2, 20), ("f2", 3, 30), ("f2", 4, 5), ("f2", 5, 8)]
    buckets, routes = plan_pieces(layout, max_rows=300, target_rows=40)
    assert len(routes[0]) == 4                      # the giant is cut in 4 slices of <= 300
    slices = [buckets[b][0] for b in routes[0]]
    assert [(p.lo, p.hi) for p in slices] == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    for c in (1, 2, 3, 4, 5):
        assert len(routes[c]) == 1
    assert routes[1] == routes[2] and routes[3] == routes[4] != routes[5]   # packed up to 40 rows
    for bucket in buckets:
        assert len({p.file for p in bucket}) == 1   # one file per task
        assert sum(p.hi - p.lo for p in bucket) <= 300


def test_arrow_vectors_reads_in_place_and_checks_length():
    rng = np.random.default_rng(3)
    x = unit(rng, 7, 4)
    arr = pa.array([v.astype("<f4").tobytes() for v in x], pa.binary())
    assert np.array_equal(arrow_vectors(arr.slice(2, 3), 4), x[2:5])
    assert np.array_equal(arrow_vectors(arr.cast(pa.large_binary()).slice(1, 4), 4), x[1:5])
    assert np.array_equal(arrow_vectors(pa.chunked_array([arr.slice(0, 3), arr.slice(3)]), 4), x)
    assert np.allclose(arrow_vectors(pa.array([v.astype("<f2").tobytes() for v in x]), 4, "float16"), x, atol=1e-3)
    with pytest.raises(ValueError, match="wrong length"):
        arrow_vectors(pa.array([b"\0" * 12]), 4)


def test_search_clusters_is_exact_within_each_cluster():
    rng = np.random.default_rng(4)
    q, c = unit(rng, 40, 8), unit(rng, 200, 8)
    qc, cc = rng.integers(0, 5, 40), rng.integers(0, 6, 200)
    rows, cols, scores = search_clusters(qc, q, cc, c, 3)
    for i in range(40):
        members = np.flatnonzero(cc == qc[i])
        expect = members[np.argsort(-(c[members] @ q[i]), kind="stable")[:3]]
        assert list(cols[rows == i]) == list(expect)
    rows, _, scores = search_clusters(qc, q, cc, c, 3, min_score=0.5)
    assert (scores >= 0.5).all()

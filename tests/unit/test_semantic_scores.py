import numpy as np
import pandas as pd
import pytest

from realsyn.jobs.semantic_neighbours import dedup_groups
from realsyn.udfs.semantic_dedup import (cluster_neighbours_fn, earlier_neighbours, fine_clusters, group_neighbours,
                                         split_group, updated_neighbours)


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_earlier_neighbour_is_the_argmax_over_earlier_rows_in_any_block_size():
    v = unit_rows(61, 8, 0)
    sims = v @ v.T
    for block in (1, 7, 2048):
        idx, best = earlier_neighbours(v, block)
        assert idx[0] == -1 and best[0] == -np.inf
        for i in range(1, len(v)):
            assert idx[i] == int(np.argmax(sims[i, :i]))
            assert abs(best[i] - sims[i, :i].max()) < 1e-5


def test_cluster_body_orders_by_rank_then_id():
    v = unit_rows(3, 4, 1)
    group = pd.DataFrame({"image_id": ["c", "a", "b"], "embedding": [x.astype("<f4").tobytes() for x in v],
                          "rank": [-50, -10, -10], "dedup_cluster": [0, 0, 0]})
    out = cluster_neighbours_fn("image_id", 4, "float32", 200, 10, 0)(group)
    assert out["image_id"].tolist() == ["c", "a", "b"]       # the largest first, then by id
    assert out["neighbour"].tolist()[0] is None and out["max_sim"].isna().tolist() == [True, False, False]
    assert out["neighbour"].tolist()[1] == "c"


def test_a_large_cluster_is_scored_in_smaller_blocks_with_the_same_answer():
    v = unit_rows(300, 8, 2)
    assert (earlier_neighbours(v)[0] == earlier_neighbours(v, max_cells=300 * 3)[0]).all()


def test_a_group_is_split_into_fine_clusters_of_about_the_configured_size_the_same_way_every_time():
    v = unit_rows(1000, 8, 3)
    fine, centroids = split_group(v, 100, 10, 42)
    sizes = np.bincount(fine)
    assert len(sizes) == 10 and sizes.min() > 0 and sizes.max() < 400
    assert (split_group(v, 100, 10, 42)[0] == fine).all()           # seeded, one thread: any worker
    assert (fine_clusters(v, centroids) == fine).all()              # the kept centroids give the same split
    small, none = split_group(v[:199], 100, 10, 42)
    assert (small == 0).all() and none is None                      # small enough: one cluster, no fit
    assert (fine_clusters(v[:5], None) == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_updated_neighbours_equal_a_full_rescore(seed):
    """Rows added anywhere in the keep order (before, between and after old rows): the new
    rows' neighbours and the old rows' updates equal earlier_neighbours over all rows, and
    only new rows and old rows whose neighbour changed are reported."""
    rng = np.random.default_rng(seed)
    v = unit_rows(400, 8, seed + 10)
    v[50] = v[10]                                   # an exact tie: the earliest row wins
    v[300] = v[10]
    is_new = rng.random(len(v)) < 0.3
    is_new[300] = True
    old = np.flatnonzero(~is_new)
    o_best, o_sims = earlier_neighbours(v[old])     # what the stored old rows say
    best = np.full(len(v), -1)
    sims = np.full(len(v), -np.inf)
    best[old] = np.where(o_best >= 0, old[np.maximum(o_best, 0)], -1)
    sims[old] = o_sims
    got_best, got_sims, changed = updated_neighbours(v, is_new, best, sims, max_cells=400 * 7)
    full_best, full_sims = earlier_neighbours(v)
    assert (got_best == full_best).all()
    assert np.allclose(got_sims, full_sims, atol=1e-6) and (np.isinf(got_sims) == np.isinf(full_sims)).all()
    assert (changed == (is_new | (full_best != best))).all()
    assert changed[~is_new].any() and not changed[~is_new].all()
    nothing = updated_neighbours(v, np.zeros(len(v), bool), full_best, full_sims)[2]
    assert not nothing.any()


def test_neighbours_are_searched_only_inside_a_fine_cluster_among_the_rows_ranked_before():
    v = unit_rows(200, 8, 4)
    fine = np.random.default_rng(5).integers(0, 7, len(v)).astype(np.int32)
    idx, best = group_neighbours(v, fine)
    sims = v @ v.T
    for i in range(len(v)):
        earlier = [j for j in range(i) if fine[j] == fine[i]]
        if not earlier:
            assert idx[i] == -1 and best[i] == -np.inf
            continue
        assert idx[i] == earlier[int(np.argmax(sims[i, earlier]))]
        assert abs(best[i] - sims[i, earlier].max()) < 1e-5


def test_planted_copies_stay_with_their_source_through_both_levels():
    base = unit_rows(3000, 16, 6)
    copies = base[:40] + 0.01 * np.random.default_rng(7).standard_normal((40, 16)).astype(np.float32)
    v = np.concatenate([base, copies / np.linalg.norm(copies, axis=1, keepdims=True)])
    ids = [f"s{i:05d}" for i in range(len(v))]
    group = pd.DataFrame({"sentence_id": ids, "embedding": [x.astype("<f4").tobytes() for x in v],
                          "rank": 0, "dedup_cluster": 0})
    out = cluster_neighbours_fn("sentence_id", 16, "float32", 100, 10, 0)(group).set_index("sentence_id")
    assert out["dedup_subcluster"].nunique() == 30
    for i in range(40):
        assert out.loc[ids[3000 + i], "neighbour"] == ids[i] and out.loc[ids[3000 + i], "max_sim"] > 0.99


def test_dedup_groups_are_the_square_root_of_the_fine_clusters_and_bound_the_group_rows():
    assert dedup_groups(100, 200, 10**6) == 1
    assert dedup_groups(200 * 10_000, 200, 10**6) == 100          # K = 10,000 fine clusters
    assert dedup_groups(200 * 10_001, 200, 10**6) == 101
    assert dedup_groups(200 * 10_000, 200, 10_000) == 200          # rows per group bound it instead
    assert dedup_groups(50, 2, 10) == 5

import numpy as np
import pandas as pd

from realsyn.udfs.semantic_dedup import cluster_neighbours_fn, earlier_neighbours


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
    out = cluster_neighbours_fn("image_id", 4, "float32")(group)
    assert out["image_id"].tolist() == ["c", "a", "b"]       # the largest first, then by id
    assert out["neighbour"].tolist()[0] is None and out["max_sim"].isna().tolist() == [True, False, False]
    assert out["neighbour"].tolist()[1] == "c"


def test_a_large_cluster_is_scored_in_smaller_blocks_with_the_same_answer():
    v = unit_rows(300, 8, 2)
    assert (earlier_neighbours(v)[0] == earlier_neighbours(v, max_cells=300 * 3)[0]).all()

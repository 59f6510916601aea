import numpy as np
import pyarrow as pa

from realsyn.udfs.balance_ops import SAMPLE_BUCKETS, min_cap, sample_bound, sampled_in_window, score_and_assign
from realsyn.udfs.centroid_levels import CentroidLevels
from realsyn.udfs.vector_codec import arrow_vectors


def _blobs(vecs):
    return [v.astype("<f4").tobytes() for v in vecs]


def test_score_and_assign_reasons_and_clusters():
    e = np.eye(4, dtype=np.float32)
    img = [e[0], e[1], e[2], e[3]]
    txt = [e[0], (e[1] + e[2]) / np.sqrt(2), -e[2], None]      # sims 1.0, 0.707, -1.0, none
    batch = pa.record_batch({
        "image_id": ["a", "b", "c", "d"],
        "sample_key": pa.array([3, 7, 0, 999_999], pa.int32()),
        "embedding": pa.array(_blobs(img), pa.binary()),
        "text_vec": pa.array([None if t is None else t.astype("<f4").tobytes() for t in txt], pa.binary())})
    cents = CentroidLevels.flat(np.stack([e[1], e[0]]).astype("<f4").tobytes(), 4)
    out = score_and_assign(batch, 4, "float32", 0.5, 0.9, cents).to_pydict()
    assert out["reason"] == ["ocr_like", None, "mismatch", "encode_error"]
    assert out["cluster_id"] == [None, 0, None, None]
    assert out["sim"][3] is None and abs(out["sim"][1] - 0.7071) < 1e-3
    sample = sampled_in_window(batch, SAMPLE_BUCKETS, 4, "float32", 0.5, 0.9)   # everything sampled: the window
    assert sample.column("image_id").to_pylist() == ["b"]
    assert np.array_equal(arrow_vectors(sample.column("embedding"), 4), e[1:2])
    assert sampled_in_window(batch, 7, 4, "float32", 0.5, 0.9).num_rows == 0        # b's key is not below 7


def test_sample_bound_covers_the_fraction_and_never_nothing():
    assert sample_bound(1.0) == SAMPLE_BUCKETS and sample_bound(0.25) == SAMPLE_BUCKETS // 4
    assert sample_bound(0.0) == 1 and sample_bound(2.0) == SAMPLE_BUCKETS


def test_min_cap_is_the_smallest_cap_above_the_rank():
    got = min_cap(np.array([0, 19, 20, 34, 35, 179, 180]), [35, 20, 180])
    assert got.tolist() == [20, 20, 35, 35, 180, 180, -1]


def test_min_cap_needs_only_less_than_and_a_where():
    """What lets the Spark stage build its SQL expression from the same rule (jobs/balance.py)."""
    class Rank:
        def __lt__(self, cap):
            return f"rank<{cap}"
    rule = min_cap(Rank(), [35, 20, 180], where=lambda c, a, b: f"if({c},{a},{b})", none="null")
    assert rule == "if(rank<20,20,if(rank<35,35,if(rank<180,180,null)))"

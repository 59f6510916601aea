"""benchmarks/engine_peers.py's pure parts: the vector check, reading the peers' Parquet, and
the worker's barrier (no engine runs here, no timing)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import engine_peers, engine_peers_worker


def test_agreement_is_cosine_over_shared_ids():
    ref = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "only_ref": np.array([1.0, 1.0])}
    other = {"a": np.array([2.0, 0.0]), "b": np.array([1.0, 1.0])}
    rows, low, mean = engine_peers.agreement(ref, other)
    assert rows == 2
    assert np.isclose(low, 1 / np.sqrt(2)) and np.isclose(mean, (1 + 1 / np.sqrt(2)) / 2)


def test_read_vectors_takes_list_and_fixed_size_list_columns(tmp_path):
    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    ids = ["x", "y", "z"]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 2)
    listed = pa.array([list(v) for v in vecs], pa.large_list(pa.float32()))
    for column in (fixed, listed):
        pq.write_table(pa.table({"image_id": ids, "embedding": column}), tmp_path / "v.parquet")
        got = engine_peers.read_vectors(pq.read_table(tmp_path / "v.parquet"), 2)
        assert list(got) == ids
        assert np.array_equal(np.stack(list(got.values())), vecs)


def test_write_input_keeps_every_image_in_row_groups(tmp_path):
    blobs = [bytes([i]) * (i + 1) for i in range(10)]
    engine_peers.write_input(blobs, tmp_path / "in.parquet", row_group=4)
    meta = pq.ParquetFile(tmp_path / "in.parquet").metadata
    assert meta.num_row_groups == 3
    table = pq.read_table(tmp_path / "in.parquet")
    assert table.column("bytes").to_pylist() == blobs
    assert table.column("image_id").to_pylist()[0] == "000000"


def test_barrier_opens_when_every_worker_is_ready(tmp_path):
    opened = engine_peers_worker.barrier(tmp_path, parties=1)
    start, where = engine_peers_worker.clock_start(tmp_path, parties=1)
    assert start == opened
    assert where.startswith("1 of 1 workers ready") and "(threads of the driver)" in where


def test_barrier_gives_up_after_its_timeout(tmp_path):
    engine_peers_worker.barrier(tmp_path, parties=2, timeout_s=0.05)
    _, where = engine_peers_worker.clock_start(tmp_path, parties=2)
    assert where.startswith("1 of 2 workers ready")


def test_cpu_window_counts_a_child_that_exits_inside_it():
    window = engine_peers_worker.CpuWindow(os.getpid(), every=0.05).start()
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.5: pass\ntime.sleep(0.2)"], check=True)
    assert window.stop() >= 0.3

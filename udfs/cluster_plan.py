"""Task plan for per-cluster search over a sentence table stored clustered: split clusters
too big for one task, pack runs of small ones, and keep each task on one file."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Piece:
    """Rows [lo, hi) of cluster `cluster` among its `rows` rows in data file `file`."""
    file: str
    cluster: int
    lo: int
    hi: int
    rows: int


def plan_pieces(layout: list[tuple[str, int, int]], max_rows: int,
                target_rows: int) -> tuple[list[list[Piece]], dict[int, list[int]]]:
    """layout: (file, cluster_id, rows) of the stored table -> (buckets, cluster -> buckets).

    A bucket is one task's share of sentences. Walking each file in cluster order, a cluster
    above max_rows is cut into ceil(n / max_rows) slices of its own (its images go to every
    slice, then merge), and smaller clusters are packed into buckets of about target_rows,
    so thousands of 400-row clusters do not become thousands of tasks and one giant
    cluster cannot stall the job. A bucket never spans files, so a task reads one
    contiguous range of one file.
    """
    target_rows = max(1, min(target_rows, max_rows))
    buckets: list[list[Piece]] = []
    routes: dict[int, list[int]] = {}
    open_file, fill = None, 0
    for file, cid, n in sorted(layout):
        if n <= 0:
            continue
        if n > max_rows:
            subs = math.ceil(n / max_rows)
            for s in range(subs):
                buckets.append([Piece(file, cid, s * n // subs, (s + 1) * n // subs, n)])
                routes.setdefault(cid, []).append(len(buckets) - 1)
            open_file = None
            continue
        if open_file != file or fill + n > target_rows:
            buckets.append([])
            open_file, fill = file, 0
        buckets[-1].append(Piece(file, cid, 0, n, n))
        fill += n
        routes.setdefault(cid, []).append(len(buckets) - 1)
    return buckets, routes

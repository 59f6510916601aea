"""Task plan for per-cluster search: split clusters too big for one task, pack tiny ones."""
from __future__ import annotations

import math


def plan_buckets(sizes: dict[int, int], max_rows: int, target_rows: int) -> dict[int, tuple[int, int]]:
    """cluster_id -> (first bucket, number of sub-buckets).

    A cluster above max_rows is spread over ceil(n / max_rows) consecutive buckets (its
    images are searched in each, then merged). Smaller clusters are packed, largest first,
    into shared buckets of about target_rows sentences, so thousands of 400-row clusters do
    not become thousands of tasks.
    """
    target_rows = max(1, min(target_rows, max_rows))
    plan: dict[int, tuple[int, int]] = {}
    next_bucket, open_bucket, fill = 0, None, 0
    for cid, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        if n > max_rows:
            subs = math.ceil(n / max_rows)
            plan[cid] = (next_bucket, subs)
            next_bucket += subs
            continue
        if open_bucket is None or fill + n > target_rows:
            open_bucket, fill = next_bucket, 0
            next_bucket += 1
        plan[cid] = (open_bucket, 1)
        fill += n
    return plan

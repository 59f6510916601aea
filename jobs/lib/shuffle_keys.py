"""Shuffle keys that send planned rows to planned tasks (cluster's files, retrieve's buckets)."""
from __future__ import annotations

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def partition_keys(spark: SparkSession, parts: int) -> np.ndarray:
    """keys[p]: a long that df.repartition(parts, col) sends to partition p (Spark hashes
    with Murmur3, seed 42, then pmod), so a planned task gets exactly its own rows."""
    probe = spark.range(0, 64 * parts).select("id", F.expr(f"pmod(hash(id), {parts})").alias("p")).collect()
    first: dict[int, int] = {}
    for r in probe:
        first.setdefault(r["p"], r["id"])
    if len(first) < parts:
        raise RuntimeError(f"no hash key found for some of {parts} partitions")
    return np.array([first[p] for p in range(parts)], np.int64)

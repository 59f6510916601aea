"""The k-means samples: one seeded key-hash draw for every stage, and its trip to the driver.

A row is in the sample of fraction f when its sample key (a seeded hash of its id, in
[0, SAMPLE_BUCKETS)) is below sample_bound(f): the draw depends only on the ids and the
seed, never on partitioning, and balance stores the key so the draw can skip row groups.
"""
from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.udfs.balance_ops import SAMPLE_BUCKETS, sample_bound
from realsyn.udfs.vector_codec import arrow_vectors


def sample_key(key: str, seed: int) -> Column:
    """Seeded hash bucket of a key column in [0, SAMPLE_BUCKETS)."""
    return F.pmod(F.xxhash64(F.col(key), F.lit(seed)), F.lit(SAMPLE_BUCKETS)).cast("int")


def hash_sample(df: DataFrame, key: str, fraction: float, seed: int) -> DataFrame:
    """About `fraction` of the rows, chosen by sample_key alone."""
    if fraction >= 1.0:
        return df
    return df.where(sample_key(key, seed) < sample_bound(fraction))


def collect_vectors(df: DataFrame, key: str, dim: int, dtype: str = "float32") -> tuple[list[str], np.ndarray]:
    """A bounded sample to the driver, through Arrow (not pickled rows), in key order.

    Sorted on the driver: a distributed orderBy would add a sampling job and a shuffle of
    the vectors for a table that is collected anyway."""
    import pyarrow.compute as pc
    table = df.select(key, "embedding").toArrow()
    table = table.take(pc.sort_indices(table, sort_keys=[(key, "ascending")]))
    return table.column(key).to_pylist(), arrow_vectors(table.column("embedding"), dim, dtype)

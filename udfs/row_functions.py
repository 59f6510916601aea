"""Generic executor bodies around a per-row function the caller passes in: the batch loop
lives here, the row logic with its owner (e.g. the world's truth figures, jobs/world/).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd


def exploded_fn(explode: Callable[[dict], list[tuple]], columns: list[str]):
    """mapInPandas body: every input record -> the rows (tuples of `columns`) explode gives."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = [row for record in batch.to_dict("records") for row in explode(record)]
            yield pd.DataFrame(rows, columns=columns)
    return run


def pair_scores_fn(score: Callable[[object, object], tuple], columns: list[str], dtype: str):
    """pandas_udf body over two columns: score(a, b) per row -> one row of `columns`."""
    def run(first: pd.Series, second: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([score(a, b) for a, b in zip(first, second)], columns=columns, dtype=dtype)
    return run

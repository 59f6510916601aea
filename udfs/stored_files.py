"""The executor half of reading a Delta table's Parquet files in place (jobs/lib/stored_rows.py
plans which row groups each task reads): opening a file on any store, reading planned row
groups, and the two mapInArrow bodies that run a batch function over them or over the
rows Spark hands the task.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from realsyn.udfs import object_files

BatchFn = Callable[[pa.RecordBatch], pa.RecordBatch]


@dataclass(frozen=True)
class RowGroup:
    file: str
    index: int
    rows: int
    low: object = None          # footer minimum of the key column; None: unknown


def open_file(uri: str):
    """(path, filesystem) for pyarrow; local paths need no filesystem object. Object stores
    take their endpoint and credentials from the one place (udfs/object_files.py)."""
    from urllib.parse import unquote, urlparse
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path), None
    filesystem, path = object_files.filesystem(uri)
    return path, filesystem


def parquet_file(uri: str):
    import pyarrow.parquet as pq
    path, filesystem = open_file(uri)
    return pq.ParquetFile(path if filesystem is None else filesystem.open_input_file(path))


def read_groups(groups: list[RowGroup], columns: list[str]) -> Iterator[pa.RecordBatch]:
    for file in dict.fromkeys(g.file for g in groups):
        handle = parquet_file(file)
        for g in groups:
            if g.file == file:
                yield from handle.read_row_group(g.index, columns=columns).to_batches()


def per_batch(fn: BatchFn) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow body: fn over every batch Spark hands the task."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield fn(batch)
    return run


def row_groups_fn(runs: list[list[RowGroup]], columns: list[str],
                  fn: BatchFn) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow body over a range of task numbers: each task reads its run of row groups
    in place and applies fn to every batch."""
    def run(tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for task in tasks:
            for t in task.column(0).to_pylist():
                for batch in read_groups(runs[t], columns):
                    yield fn(batch)
    return run

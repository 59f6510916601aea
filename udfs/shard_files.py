"""Export shards written whole, one task each (the executor half of jobs/lib/export_shards.py).

Why a module of its own: an incremental export rewrites single shards, so a shard is the
unit a task writes, names and hashes, whatever its format. The rows arrive sorted by
`_shard` (then in the order the file keeps); each run of one shard goes to a sink (a file
format: release Parquet and MDS here, the WebDataset tar in udfs/webdataset_shards.py)
that writes it under a temporary name. The finished files are hashed (sha256) and moved
or uploaded into place, and a sidecar `<index>/NNNNN.parquet` records the shard's
(image_id, row hash), so the next export knows which rows each shard holds without
reading the shards. Rows written are read back from the finished files (Parquet footer,
MDS index, tar members) for the ledgers. A sink writes the same bytes for the same rows.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from realsyn.udfs import object_files

SHARD, ROW_HASH = "_shard", "_h"
RESULT_DDL = "shard long, rows_in long, written long, rejected string, files string, sidecar string, extra string"
SIDECAR_SCHEMA = pa.schema([("image_id", pa.string()), ("h", pa.int64()), ("shard", pa.int64())])


def shard_name(shard: int) -> str:
    return f"{shard:05d}"


@dataclass
class Written:
    """What a sink wrote: name under the output folder -> (local path, rows it holds or None
    for a file that holds no rows), the rows written, the rows refused by reason, and
    anything the driver needs besides (an MDS group's index entries)."""

    files: dict[str, tuple[str, int | None]]
    written: int
    rejected: dict[str, int] = field(default_factory=dict)
    extra: object = None


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _place(local_path: str, dest: str) -> None:
    """Move a finished file to `dest` (a rename on the same disk) or upload it whole."""
    if object_files.is_local(dest):
        path = object_files.filesystem(dest)[1]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.move(local_path, path)
    else:
        object_files.upload(local_path, dest)


class _Open:
    """One shard being written: its sink, its rows' ids and hashes, a private folder."""

    def __init__(self, shard: int, folder: str, open_sink: Callable):
        local = object_files.is_local(folder)
        if local:
            os.makedirs(object_files.filesystem(folder)[1], exist_ok=True)
        # Beside the destination on a local disk (the move is a rename), else the task's disk.
        self.tmp = tempfile.mkdtemp(prefix=f".tmp-{shard_name(shard)}-",
                                    dir=object_files.filesystem(folder)[1] if local else None)
        self.shard, self.rows_in = shard, 0
        self.ids: list[pa.Table] = []
        self.sink = open_sink(shard, self.tmp)

    def add(self, rows: pa.RecordBatch) -> None:
        self.rows_in += rows.num_rows
        self.ids.append(pa.Table.from_batches([rows.select(["image_id", ROW_HASH])]))
        self.sink.add(rows.drop_columns([SHARD, ROW_HASH]))

    def close(self, folder: str, index_folder: str | None) -> pa.RecordBatch:
        done = self.sink.close()
        files = {}
        for name, (path, rows) in sorted(done.files.items()):
            files[name] = {"rows": rows, "bytes": os.path.getsize(path), "sha256": sha256_file(path)}
            _place(path, object_files.join(folder, name))
        sidecar = {}
        if index_folder is not None:
            import pyarrow.parquet as pq
            ids = pa.concat_tables(self.ids)
            table = pa.table({"image_id": ids.column("image_id").cast(pa.string()),
                              "h": ids.column(ROW_HASH).cast(pa.int64()),
                              "shard": pa.array(np.full(ids.num_rows, self.shard, dtype=np.int64))},
                             schema=SIDECAR_SCHEMA)
            name = f"{shard_name(self.shard)}.parquet"
            path = os.path.join(self.tmp, name)
            pq.write_table(table, path)
            sidecar = {name: {"rows": ids.num_rows, "bytes": os.path.getsize(path), "sha256": sha256_file(path)}}
            _place(path, object_files.join(index_folder, name))
        shutil.rmtree(self.tmp, ignore_errors=True)
        return pa.RecordBatch.from_pylist([{
            "shard": self.shard, "rows_in": self.rows_in, "written": done.written,
            "rejected": json.dumps(done.rejected, sort_keys=True), "files": json.dumps(files, sort_keys=True),
            "sidecar": json.dumps(sidecar), "extra": json.dumps(done.extra)}])


def write_shards(folder: str, index_folder: str | None,
                 open_sink: Callable) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow body: rows with `_shard` and `_h`, sorted by `_shard` -> one result row
    (RESULT_DDL) per shard written. `open_sink(shard, tmp_dir)` returns an object with
    add(record batch) and close() -> Written. No sidecar when `index_folder` is None."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        current: _Open | None = None
        for batch in batches:
            shards = batch.column(SHARD).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.r_[True, shards[1:] != shards[:-1]]) if len(shards) else []
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else len(shards)
                shard = int(shards[start])
                if current is None or current.shard != shard:
                    if current is not None:
                        yield current.close(folder, index_folder)
                    current = _Open(shard, folder, open_sink)
                current.add(batch.slice(start, end - start))
        if current is not None:
            yield current.close(folder, index_folder)
    return run


class ParquetSink:
    """Release Parquet: string columns, snappy, row groups of exactly `group_rows` rows (the
    last one less), so the same rows give the same bytes however the batches came."""

    def __init__(self, path: str, columns: tuple[str, ...], group_rows: int):
        import pyarrow.parquet as pq
        self.path, self.columns, self.group_rows = path, list(columns), group_rows
        self.schema = pa.schema([(c, pa.string()) for c in columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self.pending: list[pa.Table] = []
        self.n_pending = 0

    def add(self, rows: pa.RecordBatch) -> None:
        self.pending.append(pa.Table.from_batches([rows.select(self.columns)]).cast(self.schema))
        self.n_pending += rows.num_rows
        if self.n_pending >= self.group_rows:
            table = pa.concat_tables(self.pending)
            full = (table.num_rows // self.group_rows) * self.group_rows
            for start in range(0, full, self.group_rows):
                self.writer.write_table(table.slice(start, self.group_rows), row_group_size=self.group_rows)
            self.pending, self.n_pending = [table.slice(full)], table.num_rows - full

    def close(self) -> Written:
        import pyarrow.parquet as pq
        if self.n_pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=self.group_rows)
        self.writer.close()
        rows = pq.read_metadata(self.path).num_rows      # read back from the footer
        return Written({os.path.basename(self.path): (self.path, rows)}, rows)


def parquet_sink(columns: tuple[str, ...], group_rows: int = 100_000, prefix: str = "train-"):
    """Sink factory: one `<prefix>NNNNN.parquet` per shard."""
    def open_sink(shard: int, tmp: str) -> ParquetSink:
        return ParquetSink(os.path.join(tmp, f"{prefix}{shard_name(shard)}.parquet"), columns, group_rows)
    return open_sink


_MDS_FILE_KEYS = ("raw_data", "zip_data", "raw_meta", "zip_meta")


class MDSSink:
    """One group of Mosaic Streaming MDS shards (`NNNNN/shard.*.mds.zstd` and the group's
    index.json); `extra` holds the group's index entries with the basenames the merged
    index gives them (the group's folder in front), as streaming's merge_index writes."""

    def __init__(self, tmp: str, shard: int, columns: dict[str, str], size_limit: int, compression: str | None):
        from streaming import MDSWriter
        self.out, self.group, self.columns = os.path.join(tmp, "mds"), shard_name(shard), list(columns)
        self.writer = MDSWriter(out=self.out, columns=dict(columns), size_limit=int(size_limit),
                                compression=compression)

    def add(self, rows: pa.RecordBatch) -> None:
        for row in rows.select(self.columns).to_pylist():
            self.writer.write(row)

    def close(self) -> Written:
        self.writer.finish()
        with open(os.path.join(self.out, "index.json")) as fh:
            index = json.load(fh)
        entries, rows_of = [], {}
        for entry in index["shards"]:
            for key in _MDS_FILE_KEYS:
                if entry.get(key):
                    rows_of[entry[key]["basename"]] = int(entry["samples"])
                    entry[key]["basename"] = f"{self.group}/{entry[key]['basename']}"
            entries.append(entry)
        files = {f"{self.group}/{name}": (os.path.join(self.out, name), rows_of.get(name))
                 for name in sorted(os.listdir(self.out))}
        # raw_data and zip_data name the same samples: count them once, from the index.
        return Written(files, sum(int(e["samples"]) for e in entries), extra=entries)


def mds_sink(columns: dict[str, str], size_limit: int, compression: str | None = "zstd"):
    def open_sink(shard: int, tmp: str) -> MDSSink:
        return MDSSink(tmp, shard, columns, size_limit, compression)
    return open_sink

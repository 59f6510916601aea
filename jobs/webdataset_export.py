"""Driver side of the WebDataset export: one Spark task per shard writes a tar through
udfs/webdataset_shards.shard_writer; the driver clears the folder first, and counts the
rows each task read back from its finished tar, for export's ledger."""
from __future__ import annotations

from pyspark.sql import DataFrame

from realsyn.udfs import object_files
from realsyn.udfs.webdataset_shards import REJECT_REASONS, shard_writer

SHARD_COLUMNS = ["image_id", "bytes", "raw_image_url", "text1", "text2", "text3", "syn_text", "cluster_id", "min_cap"]


def write_shards(df: DataFrame, folder: str, resize_to: int, rows_per_shard: int = 10_000,
                 profile=None) -> dict:
    """Replace the shards in `folder`; returns rows in, rows found in the written shards,
    and the rows the writer could not write by reason. `profile`: the stage's
    ResourceProfile for the writing tasks (jobs/resources.py), or None."""
    object_files.make_dirs(folder)
    for old in object_files.list_names(folder):
        if old.endswith((".tar", ".tmp")):
            object_files.remove(object_files.join(folder, old))
    n = df.count()
    ddl = "shard string, count long, written long, " + ", ".join(f"{r} long" for r in REJECT_REASONS)
    out = (df.select(*SHARD_COLUMNS).repartition(max(1, -(-n // rows_per_shard)))
           .mapInPandas(shard_writer(folder, resize_to), ddl, profile=profile).collect())
    rejected = {r: sum(row[r] for row in out) for r in REJECT_REASONS}
    return {"rows_in": n, "written": sum(row["written"] for row in out),
            "rejected": {r: c for r, c in rejected.items() if c}, "shards": len(out)}

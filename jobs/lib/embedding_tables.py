"""Driver-side checks on the embedding tables that several stages read: one model, its layout."""
from __future__ import annotations

from pyspark.sql import DataFrame

from realsyn.jobs.core.stage import InputError


def single_model(df: DataFrame, table: str) -> str | None:
    """The one model id of an embeddings table; mixing models is refused."""
    models = [r[0] for r in df.where("status = 'kept'").select("model").distinct().limit(3).collect()]
    if len(models) > 1:
        raise ValueError(f"{table} mixes embeddings from several models: {models}; re-run embed with --force")
    return models[0] if models else None


def check_same_model(read, *tables: str) -> str | None:
    """read: name -> DataFrame (a stage's ctx.read, or the table store's read)."""
    found = {t: single_model(read(t), t) for t in tables}
    distinct = {m for m in found.values() if m}
    if len(distinct) > 1:
        raise ValueError(f"embeddings come from different models: {found}; re-run embed with --force")
    return distinct.pop() if distinct else None


# Each embeddings table and the table that marks its semantic duplicates (semantic_dedup).
DEDUP_TABLE = {"silver.image_embeddings": "silver.image_dedup",
               "silver.sentence_embeddings": "silver.sentence_dedup"}


def kept_vectors(read, table: str, key: str) -> DataFrame:
    """The vectors later stages use: encoded (kept in the embeddings table) and not a
    semantic duplicate (kept in its dedup table). read: a stage's ctx.read."""
    kept = read(DEDUP_TABLE[table]).where("status = 'kept'").select(key)
    return read(table).where("status = 'kept'").join(kept, key, "left_semi")


def embedding_meta(df: DataFrame) -> tuple[int, str]:
    """(dim, dtype) of the kept vectors of an embeddings table."""
    row = df.where("status = 'kept'").select("dim", "dtype").first()
    if row is None:
        raise InputError("no kept embeddings to cluster; check the earlier stages' ledgers")
    return int(row["dim"]), row["dtype"]

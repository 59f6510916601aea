"""gold.pair_vectors rows: balance's declared work code for its stored pairs (Balance.work_code).

Why a module: what decides a stored pair (the text encoder, the sample key) lives outside the
stage module, so the pairs' work fingerprint covers it and not the runtime the stage imports
(docs/decisions.md, issue #40), and a change of the ranking never encodes a text again.

A pair is keyed by its image and a hash of its synthetic text (`text_hash`): a new or changed
text is a key the table does not hold, so the unit run (jobs/core/units.py) encodes only those and
deletes the pair of a text that changed or left. Each pair also records the table version its
run started from (`run_version`, with Delta min/max stats per file), so gold.image_clusters'
increment reads the vectors of only the pairs encoded since the version it last reflected.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.vector_sample import sample_key
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_texts

BOOKKEEPING = ("text_hash", "run_version")


def text_hash(col: str) -> Column:
    """The pair's text key: a 64-bit hash of the synthetic text."""
    return F.xxhash64(F.col(col))


def pairs_layout(pairs: DataFrame, seed: int) -> DataFrame:
    """gold.pair_vectors rows from (image_id, embedding, text_vec, model[, text_hash, run_version]):
    the sample key added and each file sorted on it (no shuffle), so the sample pass skips
    row groups. Pairs stored outside the stage (benchmarks, tests) have no text key or run:
    null there."""
    for name in BOOKKEEPING:
        if name not in pairs.columns:
            pairs = pairs.withColumn(name, F.lit(None).cast("long"))
    return pairs.withColumn("sample_key", sample_key("image_id", seed)).sortWithinPartitions("sample_key")


def pair_rows(unit: DataFrame, encoder: EncoderSpec, batch_size: int, dtype: str, seed: int, run_version: int,
              tasks: int, profile=None) -> DataFrame:
    """The stored pairs of one unit (image_id, text_hash, syn_text, embedding, model): the
    text encoded. A text that fails to encode keeps its pair with a null text vector (balance
    rejects it as encode_error)."""
    texts = (unit.select(F.col("image_id").alias("sentence_id"), F.col("syn_text").alias("text"))
             .repartition(max(1, tasks))
             .mapInPandas(embed_texts(encoder, batch_size, dtype), OUTPUT_DDL.format(key="sentence_id"),
                          profile=profile)
             .select(F.col("sentence_id").alias("image_id"),
                     F.when(F.col("status") == "kept", F.col("embedding")).alias("text_vec")))
    pairs = (unit.select("image_id", "embedding", "model", "text_hash").join(texts, "image_id")
             .select("image_id", "embedding", "text_vec", "model", "text_hash",
                     F.lit(run_version).cast("long").alias("run_version")))
    return pairs_layout(pairs, seed)

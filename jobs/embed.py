"""embed: silver.images + silver.sentences (kept) -> CLIP embeddings, one encoder for both
(semantic duplicates are found after it: semantic_neighbours, then semantic_dedup)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame

from realsyn.jobs.lib.embedding_tables import check_same_model
from realsyn.jobs.lib.image_bytes import kept_image_bytes
from realsyn.jobs.core.models import weights_identity
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.session import session_conf
from realsyn.jobs.core.stage import Context, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import nested
from realsyn.jobs.core.units import write_in_units
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.embed_batches import OUTPUT_DDL, embed_images_arrow, embed_texts_arrow


@dataclass(frozen=True, kw_only=True)
class EmbedParams(StageParams):
    SECTION = "embedding"
    encoder: EncoderSpec = nested(EncoderSpec)
    batch_size: int
    storage_dtype: str


@contextmanager
def arrow_batch_rows(spark, rows: int):
    """Arrow batches of about one model batch while the block runs: the JVM then streams
    batches to the Python worker while it encodes the previous one, instead of handing it
    a whole partition (10,000 rows by default) at once."""
    with session_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(max(1, rows))):
        yield


def spread(df: DataFrame, parallelism: int, n_rows: int, batch: int) -> DataFrame:
    """Enough equal tasks to keep every core busy, without shuffling rows needlessly:
    the input keeps its partitions when there are at least as many as cores and they fill
    the cores evenly (a multiple of them, or many); otherwise round-robin repartition."""
    want = max(1, min(parallelism, n_rows // batch + 1))
    have = df.rdd.getNumPartitions()
    if have >= want and (have % want == 0 or have >= 4 * want):
        return df
    return df.repartition(want)


class Embed(Stage):
    name = "embed"
    description = "CLIP image and text embeddings"
    inputs = ("silver.images", "silver.image_fetches", "silver.sentences")  # kept rows; bytes from the fetches
    outputs = ("silver.image_embeddings", "silver.sentence_embeddings")
    Params = EmbedParams
    resources = TaskResources(cpus="models.torch_threads", gpus="resources.clip_task_gpus")
    unit_rows = "units.embed_rows"
    work_code = {t: ("realsyn.udfs.embed_batches",) for t in outputs}

    def weights(self, p: EmbedParams) -> dict[str, str]:
        return weights_identity({"clip": p.encoder.weights})

    def embed_key(self, p: EmbedParams) -> str:
        """What decides a vector: the encoder code, model, weights and storage dtype."""
        return self.work_fingerprint("silver.image_embeddings", {"encoder": p.encoder, "weights": self.weights(p),
                                                           "dtype": p.storage_dtype})

    def run(self, ctx: Context, p: EmbedParams) -> list[Ledger]:
        spec, size, dtype = p.encoder, p.batch_size, p.storage_dtype
        parts = ctx.spark.sparkContext.defaultParallelism
        key = self.embed_key(p)

        def embed_images(unit: DataFrame, rows: int) -> DataFrame:
            return (spread(unit, parts, rows, size)
                    .mapInArrow(embed_images_arrow(spec, size, dtype), OUTPUT_DDL.format(key="image_id"),
                                profile=ctx.task_profile))

        def embed_texts(unit: DataFrame, rows: int) -> DataFrame:
            return (unit.repartition(max(1, min(parts * 4, rows // size + 1)))
                    .mapInArrow(embed_texts_arrow(spec, size, dtype), OUTPUT_DDL.format(key="sentence_id"),
                                profile=ctx.task_profile))

        # Committed in units; only rows without a vector from the same encoder are encoded.
        images = kept_image_bytes(ctx.read)
        sentences = ctx.read("silver.sentences").where("status = 'kept'").select("sentence_id", "text")
        # The first unit (the one that times the rest) holds a model batch per core, so no core
        # waits through it.
        with arrow_batch_rows(ctx.spark, size):
            done_images = write_in_units(ctx, "silver.image_embeddings", images, "image_id", embed_images,
                                         key, ctx.unit_rows, first_rows=size * parts)
            done_sentences = write_in_units(ctx, "silver.sentence_embeddings", sentences, "sentence_id",
                                            embed_texts, key, ctx.unit_rows, first_rows=size * parts)
        check_same_model(ctx.read, "silver.image_embeddings", "silver.sentence_embeddings")
        return [ledger_from_status("image_embeddings", done_images.rows_in, ctx.read("silver.image_embeddings")),
                ledger_from_status("sentence_embeddings", done_sentences.rows_in,
                                   ctx.read("silver.sentence_embeddings"))]


if __name__ == "__main__":
    sys.exit(Embed.main())

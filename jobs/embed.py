"""embed: silver.images + silver.sentences (kept) -> CLIP embeddings, one encoder for both."""
from __future__ import annotations

import os
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.config import Config
from realsyn.jobs.stage import Context, Ledger, Stage, ledger_from_status
from realsyn.udfs.clip_encoder import EncoderSpec
from realsyn.udfs.embed_batches import embed_images, embed_texts

OUT_DDL = "{key} string, embedding binary, model string, dim int, dtype string, status string, reason string"


def encoder_spec(cfg: Config) -> EncoderSpec:
    preset = cfg.get(f"models.presets.{cfg.get('models.preset')}")
    weights = ""
    if cfg.get("models.weights_dir"):
        weights = os.path.join(os.path.abspath(os.path.expanduser(cfg.get("models.weights_dir"))), "clip")
        if not os.path.exists(weights):
            from realsyn.jobs.stage import InputError
            raise InputError(f"models.weights_dir: {weights} does not exist (expected clip/*.safetensors)")
    return EncoderSpec(preset["clip"], preset["clip_pretrained"], weights, cfg.get("run.seed"),
                       cfg.get("embedding.torch_threads"), cfg.get("embedding.mixed_precision"))


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


class Embed(Stage):
    name = "embed"
    description = "CLIP image and text embeddings"
    inputs = ("silver.images", "silver.sentences")
    outputs = ("silver.image_embeddings", "silver.sentence_embeddings")
    config_sections = ("models", "embedding", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg = ctx.cfg
        spec = encoder_spec(cfg)
        size, dtype = cfg.get("embedding.batch_size"), cfg.get("embedding.storage_dtype")
        parts = ctx.spark.sparkContext.defaultParallelism
        images = ctx.read("silver.images").where("status = 'kept'").select("image_id", "bytes")
        n_images = images.count()
        image_vecs = (images.repartition(max(1, min(parts, n_images // size + 1)))
                      .mapInPandas(embed_images(spec, size, dtype), OUT_DDL.format(key="image_id")))
        ctx.write("silver.image_embeddings", image_vecs)
        sentences = ctx.read("silver.sentences").where("status = 'kept'").select("sentence_id", "text")
        n_sentences = sentences.count()
        sentence_vecs = (sentences.repartition(max(1, min(parts * 4, n_sentences // size + 1)))
                         .mapInPandas(embed_texts(spec, size, dtype), OUT_DDL.format(key="sentence_id")))
        ctx.write("silver.sentence_embeddings", sentence_vecs)
        check_same_model(ctx.tables.read, "silver.image_embeddings", "silver.sentence_embeddings")
        return [ledger_from_status("image_embeddings", n_images, ctx.tables.read("silver.image_embeddings")),
                ledger_from_status("sentence_embeddings", n_sentences,
                                   ctx.tables.read("silver.sentence_embeddings"))]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["embed", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

"""generate: images + R1 -> gold.synthetic (caption, tags, fused syn_text) per image."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.lib.embedding_tables import check_same_model, embedding_meta, kept_vectors
from realsyn.jobs.lib.image_bytes import kept_image_bytes
from realsyn.jobs.core.models import weights_identity
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.core.stage import Context, InputError, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import nested, preset
from realsyn.jobs.lib.tag_mining import mine_tags
from realsyn.jobs.core.units import write_in_units
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec
from realsyn.udfs.generation_models import GenSpec, vllm_importable
from realsyn.jobs.lib.synthetic_rows import synthetic_rows
from realsyn.udfs.synthesis import synthesize, tag_fn
from realsyn.udfs.tag_vocabulary import merge_user_tags


@dataclass(frozen=True, kw_only=True)
class GenerateParams(StageParams):
    SECTION = "generation"
    encoder: EncoderSpec = nested(EncoderSpec)   # the CLIP of the image embeddings, for the tags
    models: GenSpec = nested(GenSpec)
    prompt_template: str
    tag_vocab_size: int
    user_tags: tuple[str, ...]
    tag_top_m: int
    tag_min_score: float
    batch_size: int
    tagger: str = preset("tagger")   # validated against udfs/synthesis.TAGGERS when the config loads


def gen_spec(p: GenerateParams) -> GenSpec:
    """The generation models, checked before any task starts."""
    if p.models.engine == "vllm" and not vllm_importable():
        raise InputError("generation.engine: vllm, but the vllm package is not installed; "
                         "install it on a GPU cluster or set generation.engine to auto or transformers")
    return p.models


class Generate(Stage):
    name = "generate"
    description = "caption + tags + LLM fusion into one synthetic text per image"
    inputs = ("silver.images", "silver.image_fetches", "silver.image_embeddings", "silver.image_dedup", "silver.sentences", "gold.retrievals")
    outputs = ("gold.synthetic",)
    Params = GenerateParams
    resources = TaskResources(cpus="models.torch_threads", gpus="resources.generation_task_gpus")
    unit_rows = "units.generate_rows"
    work_code = {"gold.synthetic": ("realsyn.jobs.lib.synthetic_rows", "realsyn.udfs.synthesis")}

    def weights(self, p: GenerateParams) -> dict[str, str]:
        return weights_identity({"clip": p.encoder.weights, "captioner": p.models.captioner_dir,
                                 "llm": p.models.llm_dir})

    def run(self, ctx: Context, p: GenerateParams) -> list[Ledger]:
        emb = ctx.read("silver.image_embeddings")
        image_model = check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        tags = merge_user_tags(mine_tags(ctx.read("silver.sentences"), p.tag_vocab_size),
                               list(p.user_tags), p.tag_vocab_size)
        encoder = Encoder(p.encoder)   # the same CLIP as the image embeddings
        if image_model and encoder.model_id != image_model:
            raise InputError(f"tags would be embedded with {encoder.model_id} but images use {image_model}")
        tag_blob = encoder.encode_texts(tags).astype("<f4").tobytes() if tags else b""
        ctx.tracker.text("\n".join(tags), "tags/vocabulary.txt")
        ctx.tracker.text(p.prompt_template, "prompt_template.txt")

        r1 = (ctx.read("gold.retrievals").where("rank = 1")
              .join(ctx.read("silver.sentences").select("sentence_id", F.col("text").alias("r1")), "sentence_id")
              .select("image_id", F.col("sentence_id").alias("r1_id"), "r1"))
        kept = kept_vectors(ctx.read, "silver.image_embeddings", "image_id").select("image_id", "embedding")
        tagged = kept.mapInPandas(tag_fn(dim, dtype, tags, tag_blob, p.tag_top_m, p.tag_min_score),
                                  "image_id string, tags array<string>")
        # An image without R1 gets no text, so no tags either (as its rejected row stores them).
        source = (tagged.join(r1, "image_id", "left")
                  .withColumn("tags", F.when(F.col("r1").isNull(), F.array().cast("array<string>"))
                              .otherwise(F.col("tags"))))
        image_bytes = kept_image_bytes(ctx.read)
        parts = max(1, ctx.spark.sparkContext.defaultParallelism)
        fn = synthesize(gen_spec(p), p.prompt_template, p.batch_size)

        def generate(unit: DataFrame, rows: int) -> DataFrame:
            return synthetic_rows(unit, image_bytes, fn, parts, ctx.task_profile)

        # Committed in units; an image is generated again only when it is new, its R1 or its
        # tags changed (new sentences can change the mined vocabulary), or what decides every
        # text did (models, prompt, settings, code).
        fingerprint = self.work_fingerprint("gold.synthetic", {"params": p, "weights": self.weights(p)})
        report = write_in_units(ctx, "gold.synthetic", source, ("image_id", "r1_id", "tags"), generate, fingerprint,
                                ctx.unit_rows)
        # Each worker resolves generation.engine itself (auto: vLLM where it can run); the run
        # records the engines its rows name (a handful of values).
        engines = (ctx.read("gold.synthetic").where(F.col("models").isNotNull())
                   .select(F.col("models")["llm_engine"].alias("engine")).distinct().collect())
        ctx.tracker.params({"llm_engines": ",".join(sorted(str(r.engine) for r in engines)) or "none"})
        return [ledger_from_status("synthetic", report.rows_in, ctx.read("gold.synthetic"))]


if __name__ == "__main__":
    sys.exit(Generate.main())

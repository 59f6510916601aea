"""generate: images + R1 -> gold.synthetic (caption, tags, fused syn_text) per image."""
from __future__ import annotations

import os
import sys

from pyspark.sql import functions as F

from realsyn.jobs.cluster import embedding_meta
from realsyn.jobs.embed import check_same_model, encoder_spec
from realsyn.jobs.stage import Context, InputError, Ledger, Stage, ledger_from_status
from realsyn.udfs.clip_encoder import Encoder
from realsyn.udfs.generation_models import GenSpec, vllm_importable
from realsyn.udfs.synthesis import OUTPUT_DDL, synthesize
from realsyn.udfs.tag_vocabulary import merge_user_tags, mine_tags


def gen_spec(cfg) -> GenSpec:
    preset = cfg.get(f"models.presets.{cfg.get('models.preset')}")
    local = {}
    for role in ("captioner", "llm"):
        local[role] = ""
        if cfg.get("models.weights_dir"):
            folder = os.path.join(os.path.abspath(os.path.expanduser(cfg.get("models.weights_dir"))), role)
            if not os.path.isdir(folder):
                raise InputError(f"models.weights_dir: {folder} does not exist (save_pretrained folder expected)")
            local[role] = folder
    engine = cfg.get("generation.engine")
    if engine == "vllm" and not vllm_importable():   # fail before any task starts
        raise InputError("generation.engine: vllm, but the vllm package is not installed; "
                         "install it on a GPU cluster or set generation.engine to auto or transformers")
    return GenSpec(preset["captioner"], preset["llm"], local["captioner"], local["llm"], cfg.get("run.seed"),
                   cfg.get("generation.caption_max_new_tokens"), cfg.get("generation.caption_num_beams"),
                   cfg.get("generation.llm_max_new_tokens"), cfg.get("embedding.torch_threads"),
                   engine, cfg.get("generation.vllm_gpu_memory"))


class Generate(Stage):
    name = "generate"
    description = "caption + tags + LLM fusion into one synthetic text per image"
    inputs = ("silver.images", "silver.image_embeddings", "silver.sentences", "gold.retrievals")
    outputs = ("gold.synthetic",)
    config_sections = ("generation", "models", "embedding", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg = ctx.cfg
        emb = ctx.read("silver.image_embeddings")
        image_model = check_same_model(ctx.read, "silver.image_embeddings")
        dim, dtype = embedding_meta(emb)
        tags = merge_user_tags(mine_tags(ctx.read("silver.sentences"), cfg.get("generation.tag_vocab_size")),
                               cfg.get("generation.user_tags"), cfg.get("generation.tag_vocab_size"))
        encoder = Encoder(encoder_spec(cfg))   # the same CLIP as the image embeddings
        if image_model and encoder.model_id != image_model:
            raise InputError(f"tags would be embedded with {encoder.model_id} but images use {image_model}")
        tag_blob = encoder.encode_texts(tags).astype("<f4").tobytes() if tags else b""
        ctx.tracker.text("\n".join(tags), "tags/vocabulary.txt")
        ctx.tracker.text(cfg.get("generation.prompt_template"), "prompt_template.txt")

        r1 = (ctx.read("gold.retrievals").where("rank = 1")
              .join(ctx.read("silver.sentences").select("sentence_id", F.col("text").alias("r1")), "sentence_id")
              .select("image_id", "r1"))
        kept = emb.where("status = 'kept'").select("image_id", "embedding")
        n_in = kept.count()
        images = (kept.join(r1, "image_id")
                  .join(ctx.read("silver.images").where("status = 'kept'").select("image_id", "bytes"), "image_id"))
        parts = max(1, ctx.spark.sparkContext.defaultParallelism)
        fn = synthesize(gen_spec(cfg), cfg.get("generation.prompt_template"), dim, dtype, tags, tag_blob,
                        cfg.get("generation.tag_top_m"), cfg.get("generation.tag_min_score"),
                        cfg.get("generation.batch_size"))
        made = images.repartition(parts, "image_id").mapInPandas(fn, OUTPUT_DDL)
        no_r1 = kept.join(r1, "image_id", "left_anti").select(
            "image_id", F.lit(None).cast("string").alias("caption"), F.array().cast("array<string>").alias("tags"),
            F.lit(None).cast("string").alias("syn_text"), F.lit(None).cast("string").alias("models"),
            F.lit("rejected").alias("status"), F.lit("no_raw_text").alias("reason"))
        out = made.unionByName(no_r1).withColumn("models", F.from_json("models", "map<string,string>"))
        ctx.write("gold.synthetic", out.select("image_id", "caption", "tags", "syn_text", "models", "status", "reason"))
        return [ledger_from_status("synthetic", n_in, ctx.tables.read("gold.synthetic"))]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["generate", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

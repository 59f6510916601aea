"""export: gold.realsyn (Delta, CDF on) + release Parquet per subset + WebDataset shards + card.

Release texts follow the public release: realistic texts lowercased and word-tokenized,
syn_text lowercased; files `train-000NN-of-000MM.parquet`, one folder per cap.
"""
from __future__ import annotations

import json
import os
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.stage import Context, Ledger, Stage
from realsyn.udfs.webdataset_shards import write_shards

RELEASE_COLUMNS = ["raw_image_url", "text1", "text2", "text3", "syn_text"]


def word_tokenize(col):
    """Lowercase and split punctuation from words (the release's tokenized form), in SQL."""
    spaced = F.regexp_replace(F.lower(col), r"([.,!?;:()\"\[\]])", " $1 ")
    return F.trim(F.regexp_replace(spaced, r"\s+", " "))


def realsyn_rows(ctx: Context) -> DataFrame:
    sentences = ctx.read("silver.sentences").select("sentence_id", "text")
    hits = ctx.read("gold.retrievals").where("rank BETWEEN 1 AND 3").join(sentences, "sentence_id")
    texts = hits.groupBy("image_id").agg(
        *[F.max(F.when(F.col("rank") == r, F.col("text"))).alias(f"text{r}") for r in (1, 2, 3)],
        F.max(F.when(F.col("rank") == 1, F.col("score"))).alias("score1"))
    clusters = ctx.read("gold.image_clusters").where("status = 'kept'").select("image_id", "sim", "cluster_id", "min_cap")
    syn = ctx.read("gold.synthetic").where("status = 'kept'").select("image_id", "syn_text")
    urls = (ctx.read("silver.images").where("status = 'kept'").groupBy("image_id")
            .agg(F.min("url").alias("raw_image_url")))
    return (clusters.join(texts, "image_id").join(syn, "image_id").join(urls, "image_id")
            .select("image_id", "raw_image_url", "text1", "text2", "text3", "syn_text",
                    F.col("score1").cast("float"), F.col("sim").cast("float"), "cluster_id", "min_cap"))


class Export(Stage):
    name = "export"
    description = "gold.realsyn, release Parquet per subset, WebDataset shards, dataset card"
    inputs = ("gold.retrievals", "gold.synthetic", "gold.image_clusters", "silver.sentences", "silver.images")
    outputs = ("gold.realsyn",)
    config_sections = ("export", "balance", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg, spark = ctx.cfg, ctx.spark
        n_in = ctx.read("gold.image_clusters").where("status = 'kept'").count()
        ctx.write("gold.realsyn", realsyn_rows(ctx), change_data_feed=True)
        gold = ctx.tables.read("gold.realsyn")
        kept = gold.count()
        out_dir = os.path.abspath(os.path.join(cfg.get("run.work_dir"), "export"))
        counts = {}
        for cap in cfg.get("balance.caps"):
            subset = gold.where(F.col("min_cap") <= cap)
            counts[cap] = subset.count()
            self.write_release(spark, subset, f"{out_dir}/realsyn_cap{cap}", cfg.get("export.shard_bytes"))
        if cfg.get("export.webdataset"):
            images = ctx.read("silver.images").where("status = 'kept'").select("image_id", "bytes").dropDuplicates(["image_id"])
            top_cap = max(cfg.get("balance.caps"))
            write_shards(gold.where(F.col("min_cap") <= top_cap).join(images, "image_id"),
                         f"{out_dir}/webdataset", cfg.get("export.resize_to"))
        card = dataset_card(counts, kept, out_dir)
        os.makedirs(out_dir, exist_ok=True)
        with open(f"{out_dir}/README.md", "w") as fh:
            fh.write(card)
        ctx.tracker.artifact(f"{out_dir}/README.md", "dataset_card")
        ctx.tracker.metrics({f"subset_{c}": n for c, n in counts.items()})
        missing = n_in - kept
        return [Ledger("export_pairs", n_in, kept, {"incomplete_pair": missing} if missing else {})]

    @staticmethod
    def write_release(spark, subset: DataFrame, folder: str, shard_bytes: int) -> None:
        release = subset.select(
            "raw_image_url", word_tokenize("text1").alias("text1"), word_tokenize("text2").alias("text2"),
            word_tokenize("text3").alias("text3"), F.lower("syn_text").alias("syn_text")).orderBy("raw_image_url")
        row_bytes = release.select(F.avg(sum(F.coalesce(F.length(c), F.lit(0)) for c in RELEASE_COLUMNS))).first()[0] or 1
        n_rows = release.count()
        shards = max(1, int(n_rows * row_bytes // shard_bytes) + (1 if n_rows * row_bytes % shard_bytes else 0))
        tmp = folder + "._tmp"
        release.repartition(shards).write.mode("overwrite").parquet(tmp)
        rename_shards(spark, tmp, folder, shards)


def rename_shards(spark, tmp: str, folder: str, shards: int) -> None:
    """part-*.parquet -> train-000NN-of-000MM.parquet, then swap the folder in."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    src = jvm.org.apache.hadoop.fs.Path(tmp)
    fs = src.getFileSystem(conf)
    parts = sorted(s.getPath().getName() for s in fs.listStatus(src) if s.getPath().getName().startswith("part-"))
    total = len(parts)
    for i, name in enumerate(parts):
        fs.rename(jvm.org.apache.hadoop.fs.Path(f"{tmp}/{name}"),
                  jvm.org.apache.hadoop.fs.Path(f"{tmp}/train-{i:05d}-of-{total:05d}.parquet"))
    for s in fs.listStatus(src):
        n = s.getPath().getName()
        if not n.startswith("train-"):
            fs.delete(s.getPath(), False)
    dst = jvm.org.apache.hadoop.fs.Path(folder)
    if fs.exists(dst):
        fs.delete(dst, True)
    fs.rename(src, dst)


def dataset_card(counts: dict, total: int, out_dir: str) -> str:
    lines = ["# RealSyn export", "", f"Pairs in gold.realsyn: {total}", "", "| cap t | pairs |", "|---|---|"]
    lines += [f"| {c} | {n} |" for c, n in sorted(counts.items())]
    lines += ["", "Release Parquet: `realsyn_cap<t>/train-*.parquet` with columns "
              + ", ".join(RELEASE_COLUMNS) + "; WebDataset: `webdataset/*.tar` (jpg, txt = text1, json).",
              "", "Counts per stage: see `meta.stage_runs` and the MLflow run.", ""]
    return "\n".join(lines) + json.dumps({"subsets": counts}) + "\n"


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["export", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

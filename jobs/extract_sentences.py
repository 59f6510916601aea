"""extract_sentences: bronze.documents -> silver.sentences (the global sentence pool).

text slots -> sentences (pandas UDF splitter) -> distinct by normalised hash ->
quality filters (SQL: emoji, URL, word count) -> information entropy over corpus word
frequencies (SQL: distributed word count + join) -> perplexity (causal LM UDF, when enabled).
"""
from __future__ import annotations

import sys

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from realsyn.jobs.stage import Context, Ledger, Stage, ledger_from_status
from realsyn.udfs.perplexity import PplSpec, perplexity_batches
from realsyn.udfs.sentence_split import sentence_id, split

# Emoji and pictographs (Java regex, runs in the JVM / on RAPIDS).
EMOJI_RE = (r"[\x{1F000}-\x{1FAFF}\x{2600}-\x{27BF}\x{2B00}-\x{2BFF}\x{1F1E6}-\x{1F1FF}"
            r"\x{FE0F}\x{200D}\x{2300}-\x{23FF}]")
URL_RE = (r"(?i)(\b(https?|ftp)://\S+|\bwww\.\S+|\b[a-z0-9-]+(\.[a-z0-9-]+)*"
          r"\.(com|org|net|edu|gov|io|co|uk|de|fr|info|biz|ly|me|tv)(/\S*)?\b)")
WORD_SPLIT = r"\s+"
TOKEN_SPLIT = r"[^\p{L}\p{N}']+"

SPLIT_TYPE = ArrayType(StructType([StructField("sentence_id", StringType()), StructField("text", StringType())]))


def splitter_udf(method: str):
    @F.pandas_udf(SPLIT_TYPE)
    def split_texts(texts: pd.Series) -> pd.Series:
        return texts.map(lambda t: [{"sentence_id": sentence_id(s), "text": s} for s in split(t, method)])
    return split_texts


def sentence_occurrences(docs: DataFrame, method: str) -> DataFrame:
    texts = docs.select(F.explode("texts").alias("text")).where(F.col("text").isNotNull())
    return texts.select(F.explode(splitter_udf(method)("text")).alias("s")).select("s.*")


def word_entropy(sentences: DataFrame) -> DataFrame:
    """sentence_id -> sum over its words of -p ln p, p = corpus frequency (occurrences counted)."""
    words = sentences.select("sentence_id", "n_occurrences",
                             F.explode(F.split(F.lower("text"), TOKEN_SPLIT)).alias("w")).where("w != ''")
    freq = words.groupBy("w").agg(F.sum("n_occurrences").alias("c"))
    total = freq.agg(F.sum("c")).first()[0] or 1
    scored = words.join(freq, "w").withColumn("p", F.col("c") / F.lit(total))
    return scored.groupBy("sentence_id").agg(F.sum(-F.col("p") * F.log("p")).alias("entropy"))


def quality_reason(cfg) -> F.Column:
    reason = F.lit(None).cast("string")
    checks = []
    if cfg.get("sentences.reject_emoji"):
        checks.append((F.col("text").rlike(EMOJI_RE), "emoji"))
    if cfg.get("sentences.reject_urls"):
        checks.append((F.col("text").rlike(URL_RE), "url"))
    checks.append((F.col("n_words") < cfg.get("sentences.min_words"), "too_few_words"))
    checks.append((F.col("n_words") > cfg.get("sentences.max_words"), "too_many_words"))
    expr = None
    for cond, name in checks:
        expr = F.when(cond, name) if expr is None else expr.when(cond, name)
    return expr if expr is not None else reason


def ppl_spec(cfg) -> PplSpec:
    import os
    name = cfg.get(f"models.presets.{cfg.get('models.preset')}.ppl_lm")
    local = ""
    if cfg.get("models.weights_dir"):
        local = os.path.join(os.path.abspath(os.path.expanduser(cfg.get("models.weights_dir"))), "ppl_lm")
        local = local if os.path.isdir(local) else ""
    return PplSpec(name, local, cfg.get("run.seed"), cfg.get("sentences.ppl_batch_size"),
                   cfg.get("sentences.ppl_max_tokens"), cfg.get("embedding.torch_threads"))


class ExtractSentences(Stage):
    name = "extract_sentences"
    description = "split, filter and dedup every sentence"
    inputs = ("bronze.documents",)
    outputs = ("silver.sentences",)
    config_sections = ("sentences", "models", "embedding", "run")

    def run(self, ctx: Context) -> list[Ledger]:
        cfg = ctx.cfg
        occ = sentence_occurrences(ctx.read("bronze.documents"), cfg.get("sentences.splitter"))
        pool = occ.groupBy("sentence_id").agg(F.min("text").alias("text"), F.count("*").alias("n_occurrences"))
        pool = pool.persist()
        n_occurrences = pool.agg(F.sum("n_occurrences")).first()[0] or 0
        pool = pool.withColumn("n_words", F.size(F.split(F.trim("text"), WORD_SPLIT)).cast("int"))
        pool = pool.join(word_entropy(pool), "sentence_id", "left").fillna(0.0, ["entropy"])
        pool = pool.withColumn("reason", F.coalesce(
            quality_reason(cfg), F.when(F.col("entropy") < cfg.get("sentences.entropy_min"), "low_entropy")))
        ppl_on = cfg.get("sentences.perplexity_filter")
        if ppl_on:  # only sentences that passed the cheaper filters reach the LM
            ppl_udf = F.pandas_udf(perplexity_batches(ppl_spec(cfg)), "double")
            pool = pool.withColumn("perplexity", F.when(F.col("reason").isNull(), ppl_udf(F.col("text"))))
            lo, hi = cfg.get("sentences.ppl_min"), cfg.get("sentences.ppl_max")
            pool = pool.withColumn("reason", F.coalesce(
                F.col("reason"),
                F.when(F.isnan("perplexity"), "ppl_undefined")
                 .when(F.col("perplexity") < lo, "low_perplexity").when(F.col("perplexity") > hi, "high_perplexity")))
        else:
            pool = pool.withColumn("perplexity", F.lit(None).cast("double"))
        ran = {"splitter": cfg.get("sentences.splitter"), "emoji": cfg.get("sentences.reject_emoji"),
               "url": cfg.get("sentences.reject_urls"), "word_count": True, "entropy": True,
               "perplexity": bool(ppl_on),
               # The CAT parser is not built yet: recorded so no run claims it ran.
               "complexity": False}
        out = pool.select(
            "sentence_id", "text", "n_words", "n_occurrences",
            F.lit(None).cast("int").alias("complexity"), F.lit(None).cast("string").alias("has_action"),
            F.col("entropy").cast("double"), F.col("perplexity").cast("double"),
            F.lit(None).cast("string").alias("duplicate_of"),
            F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason")
        ctx.write("silver.sentences", out)
        pool.unpersist()
        ctx.tracker.dict(ran, "filters_ran.json")
        ctx.tracker.params({f"filter_ran.{k}": v for k, v in ran.items()})
        ledger = ledger_from_status("sentences", n_occurrences, ctx.tables.read("silver.sentences"))
        distinct = ledger.kept + ledger.rejected_total
        ledger.rejected["duplicate_sentence"] = n_occurrences - distinct
        return [ledger]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["extract_sentences", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

"""The sentence filters as Spark expressions over (sentence_id, text, n_occurrences) rows:
the code that decides every silver.sentences row, and so the whole of the filter units' work
fingerprint together with its settings and models (it reaches no runtime module).

Quality (SQL: control characters, emoji, URLs, word count) -> CAT complexity and action
(spaCy parse in a pandas UDF, when a pipeline is configured) -> information entropy of each
sentence's own words (pandas UDF) -> perplexity (causal LM UDF, when enabled). Cheaper
filters first: only sentences that passed them reach the models.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.udfs import complexity as cat
from realsyn.udfs.declared import nested
from realsyn.udfs.perplexity import PplSpec, perplexity_batches
from realsyn.udfs.sentence_entropy import entropy_batch

# Emoji and pictographs (Java regex, runs in the JVM / on RAPIDS).
EMOJI_RE = (r"[\x{1F000}-\x{1FAFF}\x{2600}-\x{27BF}\x{2B00}-\x{2BFF}\x{1F1E6}-\x{1F1FF}"
            r"\x{FE0F}\x{200D}\x{2300}-\x{23FF}]")
# No repeated group: Java's regex engine recurses once per repetition of a group, so a
# 5,000-character "a.a.a..." token overflowed the executor's stack. A host is one bounded
# character class (at most 253 characters, DNS's limit) before its top-level domain.
URL_RE = (r"(?i)(\b(https?|ftp)://\S+|\bwww\.\S+|\b[a-z0-9][a-z0-9.-]{0,253}"
          r"\.(com|org|net|edu|gov|io|co|uk|de|fr|info|biz|ly|me|tv)\b)")

# C0/C1 controls (not tab, newline, carriage return) and bidi overrides: never caption text.
CONTROL_RE = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{7F}-\x{9F}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
WORD_SPLIT = r"\s+"



@dataclass(frozen=True, kw_only=True)
class SentenceFilters:
    """Every setting that decides a sentence's verdict (sentences.* in the config)."""
    SECTION = "sentences"
    reject_emoji: bool
    reject_urls: bool
    min_words: int
    max_words: int
    min_complexity: int
    require_action: bool
    entropy_min: float
    perplexity_filter: bool
    ppl_min: float
    ppl_max: float
    ppl: PplSpec = nested(PplSpec)


def word_entropy(text: Column) -> Column:
    """Normalised entropy of the sentence's own word distribution (udfs/sentence_entropy.py)."""
    return F.pandas_udf(entropy_batch, "double")(text)


def quality_reason(p: SentenceFilters) -> F.Column:
    reason = F.lit(None).cast("string")
    checks = [(F.col("text").rlike(CONTROL_RE), "control_characters")]
    if p.reject_emoji:
        checks.append((F.col("text").rlike(EMOJI_RE), "emoji"))
    if p.reject_urls:
        checks.append((F.col("text").rlike(URL_RE), "url"))
    checks.append((F.col("n_words") < p.min_words, "too_few_words"))
    checks.append((F.col("n_words") > p.max_words, "too_many_words"))
    expr = None
    for cond, name in checks:
        expr = F.when(cond, name) if expr is None else expr.when(cond, name)
    return expr if expr is not None else reason


def complexity_reason(p: SentenceFilters, pool: DataFrame, spec: cat.ComplexitySpec) -> DataFrame:
    """Parse only sentences no cheaper filter rejected (others reach the UDF as null)."""
    parse = F.pandas_udf(cat.complexity_batches(spec), cat.OUTPUT_DDL)
    pool = pool.withColumn("cat", parse(F.when(F.col("reason").isNull(), F.col("text"))))
    pool = pool.withColumn("complexity", F.col("cat.complexity")).withColumn("has_action", F.col("cat.has_action"))
    check = F.when(F.col("complexity") < p.min_complexity, "low_complexity")
    if p.require_action:
        check = check.when(~F.col("has_action"), "no_action")
    return pool.withColumn("reason", F.coalesce(F.col("reason"), check)).drop("cat")


def filtered_sentences(pool: DataFrame, p: SentenceFilters, cx: cat.ComplexitySpec | None) -> DataFrame:
    """silver.sentences rows for distinct sentences (sentence_id, text, n_occurrences): each
    filter's reason, the cheaper ones first; only sentences that passed them reach the models."""
    pool = pool.withColumn("n_words", F.size(F.split(F.trim("text"), WORD_SPLIT)).cast("int"))
    pool = pool.withColumn("entropy", word_entropy(F.col("text")))
    pool = pool.withColumn("reason", quality_reason(p))
    if cx:
        pool = complexity_reason(p, pool, cx)
    else:
        pool = (pool.withColumn("complexity", F.lit(None).cast("int"))
                .withColumn("has_action", F.lit(None).cast("boolean")))
    pool = pool.withColumn("reason", F.coalesce(
        F.col("reason"), F.when(F.col("entropy") < p.entropy_min, "low_entropy")))
    if p.perplexity_filter:
        ppl_udf = F.pandas_udf(perplexity_batches(p.ppl), "double")
        pool = pool.withColumn("perplexity", ppl_udf(F.when(F.col("reason").isNull(), F.col("text"))))
        lo, hi = p.ppl_min, p.ppl_max
        pool = pool.withColumn("reason", F.coalesce(
            F.col("reason"),
            # NaN reaches Spark as null through Arrow: either way the LM gave no value.
            F.when(F.col("perplexity").isNull() | F.isnan("perplexity"), "ppl_undefined")
             .when(F.col("perplexity") < lo, "low_perplexity").when(F.col("perplexity") > hi, "high_perplexity")))
    else:
        pool = pool.withColumn("perplexity", F.lit(None).cast("double"))
    return pool.select(
        "sentence_id", "text", "n_words", "n_occurrences",
        F.col("complexity").cast("int"), F.col("has_action").cast("string"),
        F.col("entropy").cast("double"), F.col("perplexity").cast("double"),
        F.lit(None).cast("string").alias("duplicate_of"),
        F.when(F.col("reason").isNull(), "kept").otherwise("rejected").alias("status"), "reason")

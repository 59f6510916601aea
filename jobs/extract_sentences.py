"""extract_sentences: bronze.documents -> silver.document_sentences -> silver.sentences (the
global sentence pool).

text slots -> sentences (pandas UDF splitter, once per document: silver.document_sentences)
-> distinct by normalised hash ->
quality filters (SQL: emoji, URL, word count) -> CAT complexity and action (spaCy parse in a
pandas UDF, when a pipeline is configured) -> information entropy of each sentence's own
words (pandas UDF, no corpus statistics) -> perplexity (causal LM UDF, when enabled).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.models import preset_model, weights_folder, weights_identity
from realsyn.jobs.resources import TaskResources
from realsyn.jobs.stage import Context, InputError, Ledger, Stage, StageParams, ledger_from_status
from realsyn.jobs.units import work_fingerprint, write_in_units
from realsyn.schemas import spec
from realsyn.udfs import complexity as cat
from realsyn.udfs.funnel import SENTENCE_STAGES, log_funnel
from realsyn.udfs.perplexity import PplSpec, perplexity_batches
from realsyn.udfs.sentence_entropy import entropy_batch
from realsyn.udfs.sentence_split import document_sentences

# Emoji and pictographs (Java regex, runs in the JVM / on RAPIDS).
EMOJI_RE = (r"[\x{1F000}-\x{1FAFF}\x{2600}-\x{27BF}\x{2B00}-\x{2BFF}\x{1F1E6}-\x{1F1FF}"
            r"\x{FE0F}\x{200D}\x{2300}-\x{23FF}]")
URL_RE = (r"(?i)(\b(https?|ftp)://\S+|\bwww\.\S+|\b[a-z0-9-]+(\.[a-z0-9-]+)*"
          r"\.(com|org|net|edu|gov|io|co|uk|de|fr|info|biz|ly|me|tv)(/\S*)?\b)")
# C0/C1 controls (not tab, newline, carriage return) and bidi overrides: never caption text.
CONTROL_RE = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{7F}-\x{9F}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
WORD_SPLIT = r"\s+"

log = logging.getLogger("realsyn")

# The splitter UDF returns the stored column's own type.
SPLIT_TYPE = spec("silver.document_sentences").schema["sentences"].dataType


def split_documents(docs: DataFrame, method: str) -> DataFrame:
    """silver.document_sentences rows (doc_id, sentences) of documents (doc_id, texts)."""
    @F.pandas_udf(SPLIT_TYPE)
    def split_texts(texts: pd.Series) -> pd.Series:
        return texts.map(lambda ts: document_sentences(ts, method))
    return docs.select("doc_id", split_texts("texts").alias("sentences"))


def sentence_pool(document_sentences: DataFrame) -> DataFrame:
    """One row per distinct sentence: (sentence_id, text, n_occurrences) over all documents."""
    occ = document_sentences.select(F.explode("sentences").alias("s")).select("s.*")
    return occ.groupBy("sentence_id").agg(F.min("text").alias("text"), F.count("*").alias("n_occurrences"))


def word_entropy(text: Column) -> Column:
    """Normalised entropy of the sentence's own word distribution (udfs/sentence_entropy.py)."""
    return F.pandas_udf(entropy_batch, "double")(text)


@dataclass(frozen=True)
class ExtractSentencesParams(StageParams):
    splitter: str
    reject_emoji: bool
    reject_urls: bool
    min_words: int
    max_words: int
    complexity_filter: bool
    complexity_model: str
    complexity_batch_size: int
    min_complexity: int
    require_action: bool
    entropy_min: float
    perplexity_filter: bool
    ppl_min: float
    ppl_max: float
    ppl: PplSpec

    @classmethod
    def from_config(cls, cfg) -> "ExtractSentencesParams":
        s = "sentences."
        ppl = PplSpec(preset_model(cfg, "ppl_lm"), weights_folder(cfg, "ppl_lm"), cfg.get("run.seed"),
                      cfg.get(s + "ppl_batch_size"), cfg.get(s + "ppl_max_tokens"), cfg.get("embedding.torch_threads"))
        return cls(**{k: cfg.get(s + k) for k in (
            "splitter", "reject_emoji", "reject_urls", "min_words", "max_words", "complexity_filter",
            "complexity_model", "complexity_batch_size", "min_complexity", "require_action", "entropy_min",
            "perplexity_filter", "ppl_min", "ppl_max")}, ppl=ppl)


def quality_reason(p: ExtractSentencesParams) -> F.Column:
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


def complexity_spec(p: ExtractSentencesParams) -> cat.ComplexitySpec | None:
    """The CAT filter runs when it is on and a spaCy pipeline is configured (none ships here)."""
    if not p.complexity_filter or not p.complexity_model:
        return None
    try:
        return cat.ComplexitySpec(cat.resolve(p.complexity_model), p.complexity_batch_size)
    except cat.ComplexityModelError as err:
        raise InputError(str(err)) from None


def complexity_reason(p: ExtractSentencesParams, pool: DataFrame, spec: cat.ComplexitySpec) -> DataFrame:
    """Parse only sentences no cheaper filter rejected (others reach the UDF as null)."""
    parse = F.pandas_udf(cat.complexity_batches(spec), cat.OUTPUT_DDL)
    pool = pool.withColumn("cat", parse(F.when(F.col("reason").isNull(), F.col("text"))))
    pool = pool.withColumn("complexity", F.col("cat.complexity")).withColumn("has_action", F.col("cat.has_action"))
    check = F.when(F.col("complexity") < p.min_complexity, "low_complexity")
    if p.require_action:
        check = check.when(~F.col("has_action"), "no_action")
    return pool.withColumn("reason", F.coalesce(F.col("reason"), check)).drop("cat")


def filtered_sentences(pool: DataFrame, p: ExtractSentencesParams, cx: cat.ComplexitySpec | None) -> DataFrame:
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


def sentence_ledger(n_occurrences: int, written: DataFrame) -> Ledger:
    """In: the sentence occurrences read. Kept and rejected by reason, and every occurrence
    after a sentence's first (duplicate_sentence), all counted from the written rows."""
    ledger = ledger_from_status("sentences", n_occurrences, written)
    ledger.rejected["duplicate_sentence"] = written.agg(F.sum(F.col("n_occurrences") - 1)).first()[0] or 0
    return ledger


class ExtractSentences(Stage):
    name = "extract_sentences"
    description = "split, filter and dedup every sentence"
    inputs = ("bronze.documents",)
    outputs = ("silver.document_sentences", "silver.sentences")
    Params = ExtractSentencesParams
    resources = TaskResources(cpus="embedding.torch_threads")   # perplexity LM; in pandas_udfs, which take no ResourceProfile
    unit_rows = "units.sentence_rows"

    def weights(self, p: ExtractSentencesParams) -> dict[str, str]:
        out = weights_identity({"ppl_lm": p.ppl.local_dir}) if p.perplexity_filter else {}
        spec = complexity_spec(p)
        if spec:
            out.update(weights_identity({"complexity_model": spec.model}) if os.path.isdir(spec.model)
                       else {"complexity_model": cat.package_identity(spec.model)})
        return out

    def split_key(self, p: ExtractSentencesParams) -> str:
        """What decides a document's sentences: the splitter's code and method (not the
        filters, so changing one splits nothing again)."""
        return work_fingerprint(("realsyn.udfs.sentence_split",), {"splitter": p.splitter})

    def filter_key(self, p: ExtractSentencesParams) -> str:
        """What decides a sentence's row: this module's filters, their settings and models."""
        return work_fingerprint(("realsyn.jobs.extract_sentences",), {"params": p, "weights": self.weights(p)})

    def run(self, ctx: Context, p: ExtractSentencesParams) -> list[Ledger]:
        cx = complexity_spec(p)
        if p.complexity_filter and not cx:
            log.warning("sentences.complexity_filter is on but sentences.complexity_model is empty: "
                        "the CAT complexity filter does not run (recorded as filter_ran.complexity=False)")
        # Each document is split once: a rerun with new input splits the new documents alone
        # and counts every sentence's occurrences from the stored splits.
        write_in_units(ctx, "silver.document_sentences", ctx.read("bronze.documents").select("doc_id", "texts"),
                       "doc_id", lambda unit, _rows: split_documents(unit, p.splitter), self.split_key(p),
                       ctx.unit_rows)
        pool = sentence_pool(ctx.read("silver.document_sentences")).persist()
        n_occurrences = pool.agg(F.sum("n_occurrences")).first()[0] or 0
        # Committed in units; a sentence is filtered again only when it is new or its text or
        # occurrence count changed (new documents repeating it), so a rerun with new input
        # runs the LM on the new sentences alone.
        write_in_units(ctx, "silver.sentences", pool, ("sentence_id", "text", "n_occurrences"),
                       lambda unit, _rows: filtered_sentences(unit, p, cx), self.filter_key(p), ctx.unit_rows)
        pool.unpersist()
        ppl_on = p.perplexity_filter
        ran: dict[str, object] = {"splitter": p.splitter, "emoji": p.reject_emoji, "url": p.reject_urls, "word_count": True, "entropy": True,
               "perplexity": bool(ppl_on),
               # Only with a configured spaCy pipeline: recorded so no run claims it ran.
               "complexity": bool(cx), "complexity_model": cx.model if cx else ""}
        ctx.tracker.dict(ran, "filters_ran.json")
        ctx.tracker.params({f"filter_ran.{k}": str(v) for k, v in ran.items()})
        ledger = sentence_ledger(n_occurrences, ctx.read("silver.sentences"))
        not_run = {label for label, on in (("complexity + action", cx), ("perplexity", ppl_on)) if not on}
        log_funnel(ctx.tracker, ledger, SENTENCE_STAGES, "sentence occurrences",
                   "extract_sentences: rows left after each filter", frozenset(not_run))
        return [ledger]


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.cli import main as cli_main
    return cli_main(["extract_sentences", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())

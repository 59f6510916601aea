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

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.core.models import weights_identity
from realsyn.jobs.lib.document_split import split_documents
from realsyn.jobs.core.resources import TaskResources
from realsyn.jobs.lib.sentence_filters import SentenceFilters, filtered_sentences
from realsyn.jobs.core.stage import Context, InputError, Ledger, Stage, StageParams, ledger_from_status
from realsyn.udfs.declared import nested
from realsyn.jobs.core.units import write_in_units
from realsyn.udfs import complexity as cat
from realsyn.udfs.funnel import SENTENCE_STAGES, log_funnel

log = logging.getLogger("realsyn")

def sentence_pool(document_sentences: DataFrame) -> DataFrame:
    """One row per distinct sentence: (sentence_id, text, n_occurrences) over all documents."""
    occ = document_sentences.select(F.explode("sentences").alias("s")).select("s.*")
    return occ.groupBy("sentence_id").agg(F.min("text").alias("text"), F.count("*").alias("n_occurrences"))


@dataclass(frozen=True, kw_only=True)
class ExtractSentencesParams(StageParams):
    SECTION = "sentences"
    splitter: str
    complexity_filter: bool
    complexity_model: str
    complexity_batch_size: int
    filters: SentenceFilters = nested(SentenceFilters)


def complexity_spec(p: ExtractSentencesParams) -> cat.ComplexitySpec | None:
    """The CAT filter runs when it is on and a spaCy pipeline is configured (none ships here)."""
    if not p.complexity_filter or not p.complexity_model:
        return None
    try:
        return cat.ComplexitySpec(model=cat.resolve(p.complexity_model), batch_size=p.complexity_batch_size)
    except cat.ComplexityModelError as err:
        raise InputError(str(err)) from None


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
    resources = TaskResources(cpus="models.torch_threads")   # perplexity LM; in pandas_udfs, which take no ResourceProfile
    unit_rows = "units.sentence_rows"
    work_code = {"silver.document_sentences": ("realsyn.jobs.lib.document_split",),
                 "silver.sentences": ("realsyn.jobs.lib.sentence_filters",)}

    def weights(self, p: ExtractSentencesParams) -> dict[str, str]:
        f = p.filters
        out = weights_identity({"ppl_lm": f.ppl.local_dir}) if f.perplexity_filter else {}
        spec = complexity_spec(p)
        if spec:
            out.update(weights_identity({"complexity_model": spec.model}) if os.path.isdir(spec.model)
                       else {"complexity_model": cat.package_identity(spec.model)})
        return out

    def split_key(self, p: ExtractSentencesParams) -> str:
        """What decides a document's sentences: the splitter's code and method (not the
        filters, so changing one splits nothing again)."""
        return self.work_fingerprint("silver.document_sentences", {"splitter": p.splitter})

    def filter_key(self, p: ExtractSentencesParams) -> str:
        """What decides a sentence's row: the filters' code (jobs/lib/sentence_filters.py), their
        settings, whether the CAT parser runs, and the models by content."""
        return self.work_fingerprint("silver.sentences", {
            "filters": p.filters, "complexity": bool(complexity_spec(p)), "weights": self.weights(p)})

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
                       lambda unit, _rows: filtered_sentences(unit, p.filters, cx), self.filter_key(p), ctx.unit_rows)
        pool.unpersist()
        ppl_on = p.filters.perplexity_filter
        ran: dict[str, object] = {"splitter": p.splitter, "emoji": p.filters.reject_emoji, "url": p.filters.reject_urls, "word_count": True, "entropy": True,
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


if __name__ == "__main__":
    sys.exit(ExtractSentences.main())

"""The sentence filters against a world's truth: are descriptions kept, is planted junk removed?

A world records every description it wrote into its documents' prose (truth_sentences.parquet)
and every sentence it planted for a filter to reject, by kind (junk_sentences.parquet: emoji,
URL, word count, no action, a corpus-wide duplicate, repetition, and the off-grammar or
garbled prose only a language model tells). Each distinct sentence of silver.sentences is
classed by its text (a description, a junk kind, or other page prose) and counted by the
funnel step that removed it (udfs/funnel.SENTENCE_STAGES), or as kept. Pure Python: the
counts come from Spark (jobs/world/truth_report.py).
"""
from __future__ import annotations

import os
from collections import Counter

from realsyn.udfs.funnel import SENTENCE_STAGES

DESCRIPTION, PROSE, KEPT = "description", "page prose", "kept"
STEPS = tuple(label for label, _ in SENTENCE_STAGES[1:])   # the filters after the exact dedup


def step_of(reason: str | None) -> str:
    """The funnel step that removes a sentence with this reason ("kept" for none)."""
    if reason is None:
        return KEPT
    for label, reasons in SENTENCE_STAGES:
        if reasons is not None and reason in reasons:
            return label
    return "other"


def sentence_classes(world: str) -> dict[str, str]:
    """sentence text -> its class: `description` (in a document's prose, not alt text) or
    the kind of planted junk. A world written before junk was recorded has descriptions only."""
    import pyarrow.parquet as pq
    out: dict[str, str] = {}
    junk = os.path.join(world, "junk_sentences.parquet")
    if os.path.exists(junk):
        out.update({r["sentence"]: r["kind"] for r in pq.read_table(junk, columns=["sentence", "kind"]).to_pylist()})
    truth = pq.read_table(os.path.join(world, "truth_sentences.parquet"), columns=["sentence", "placement"])
    out.update({r["sentence"]: DESCRIPTION for r in truth.to_pylist() if r["placement"] != "alt_text"})
    return out


def filter_truth(counts: Counter, planted: Counter) -> dict:
    """counts: (class, reason or None) -> distinct sentences of silver.sentences; planted:
    class -> distinct sentences the world wrote. {steps (funnel order), classes: [{class, planted, found, kept,
    removed_by: {step: n}}], descriptions_kept, junk_removed, junk_removed_by_perplexity}."""
    rows: dict[str, dict] = {}
    for (cls, reason), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        row = rows.setdefault(cls, {"class": cls, "planted": planted.get(cls), "found": 0, KEPT: 0, "removed_by": {}})
        row["found"] += n
        step = step_of(reason)
        if step == KEPT:
            row[KEPT] += n
        else:
            row["removed_by"][step] = row["removed_by"].get(step, 0) + n
    junk = [r for c, r in rows.items() if c not in (DESCRIPTION, PROSE)]
    found = sum(r["found"] for r in junk)
    removed = found - sum(r[KEPT] for r in junk)
    by_ppl = sum(r["removed_by"].get("perplexity", 0) for r in junk)
    desc = rows.get(DESCRIPTION)
    return {"steps": [*STEPS], "classes": sorted(rows.values(), key=lambda r: (r["class"] != DESCRIPTION, r["class"] == PROSE,
                                                            r["class"])),
            "descriptions_kept": desc[KEPT] / desc["found"] if desc and desc["found"] else None,
            "junk_removed": removed / found if found else None,
            "junk_removed_by_perplexity": by_ppl / found if found else None}

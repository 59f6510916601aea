"""The ledgers count each side from rows, so a lost or extra row makes them fail."""
from __future__ import annotations

import pytest

from realsyn.jobs.export import export_ledger
from realsyn.jobs.extract_sentences import sentence_ledger
from realsyn.jobs.core.stage import LedgerError


def recorded(result, name):
    return {l.name: l for o in result.outcomes for l in o.ledgers}[name]


def test_sentence_ledger_counts_duplicates_from_the_written_rows(sample_pipeline):
    _, result, store = sample_pipeline
    led = recorded(result, "sentences")
    written = store.read("silver.sentences")
    again = sentence_ledger(led.rows_in, written)
    again.check("extract_sentences")
    assert again.as_dict() == led.as_dict()
    lost = written.where(f"sentence_id != '{written.where('n_occurrences > 1').first()['sentence_id']}'")
    with pytest.raises(LedgerError):
        sentence_ledger(led.rows_in, lost).check("extract_sentences")


def test_export_ledger_counts_incomplete_pairs_from_the_rows(sample_pipeline):
    _, result, store = sample_pipeline
    led = recorded(result, "export_pairs")
    clusters, gold = store.read("gold.image_clusters"), store.read("gold.realsyn")
    again = export_ledger(clusters, gold)
    again.check("export")
    assert again.as_dict() == led.as_dict()
    with pytest.raises(LedgerError):      # a gold row written twice
        export_ledger(clusters, gold.unionByName(gold.limit(1))).check("export")

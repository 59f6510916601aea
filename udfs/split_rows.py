"""The sentence splitter's pandas_udf body (silver.document_sentences, jobs/lib/document_split.py)."""
from __future__ import annotations

import pandas as pd

from realsyn.udfs.sentence_split import document_sentences


def split_fn(method: str):
    """pandas_udf body: each document's text slots -> its sentences (document_sentences)."""
    def run(texts: pd.Series) -> pd.Series:
        return texts.map(lambda ts: document_sentences(ts, method))
    return run

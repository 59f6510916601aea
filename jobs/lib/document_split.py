"""silver.document_sentences rows: each document's text slots split into sentences by the
pandas UDF around udfs/sentence_split.py. The split units' whole work code (it reaches no
runtime module)."""
from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.schemas import spec
from realsyn.udfs.sentence_split import document_sentences

# The splitter UDF returns the stored column's own type.
SPLIT_TYPE = spec("silver.document_sentences").schema["sentences"].dataType


def split_documents(docs: DataFrame, method: str) -> DataFrame:
    """silver.document_sentences rows (doc_id, sentences) of documents (doc_id, texts)."""
    @F.pandas_udf(SPLIT_TYPE)
    def split_texts(texts: pd.Series) -> pd.Series:
        return texts.map(lambda ts: document_sentences(ts, method))
    return docs.select("doc_id", split_texts("texts").alias("sentences"))

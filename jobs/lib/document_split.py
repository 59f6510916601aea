"""silver.document_sentences rows: each document's text slots split into sentences by the
pandas UDF body of udfs/split_rows.py (around udfs/sentence_split.py). The split units' whole work code (it reaches no
runtime module)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.schemas import spec
from realsyn.udfs.split_rows import split_fn

# The splitter UDF returns the stored column's own type.
SPLIT_TYPE = spec("silver.document_sentences").schema["sentences"].dataType


def split_documents(docs: DataFrame, method: str) -> DataFrame:
    """silver.document_sentences rows (doc_id, sentences) of documents (doc_id, texts)."""
    split_texts = F.pandas_udf(split_fn(method), SPLIT_TYPE)
    return docs.select("doc_id", split_texts("texts").alias("sentences"))

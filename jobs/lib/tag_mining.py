"""Tag vocabulary mined from the sentence pool: frequent content words (Spark SQL).

Method (the paper's mining is unpublished): lowercase alphabetic tokens of length >= 3
from kept sentences, weighted by how often each sentence occurs, minus English function
words and common verbs' auxiliaries; the most frequent `size` words. Only the top list
reaches the driver; udfs/tag_vocabulary.py merges it with the user's tags.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from realsyn.udfs.tag_vocabulary import STOPWORDS


def mine_tags(sentences: DataFrame, size: int) -> list[str]:
    words = (sentences.where("status = 'kept'")
             .select("n_occurrences", F.explode(F.split(F.lower("text"), r"[^a-z]+")).alias("w"))
             .where(F.length("w") >= 3)
             .where(~F.col("w").isin(sorted(STOPWORDS))))
    top = (words.groupBy("w").agg(F.sum("n_occurrences").alias("c"))
           .orderBy(F.col("c").desc(), F.col("w")).limit(size).collect())
    return [r["w"] for r in top]

"""Tag vocabulary mined from the sentence pool: frequent content words.

Method (the paper's mining is unpublished): lowercase alphabetic tokens of length >= 3
from kept sentences, weighted by how often each sentence occurs, minus English function
words and common verbs' auxiliaries; the most frequent `size` words, merged with an
optional user list (user tags first). Runs as Spark SQL; only the top list reaches the driver.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

STOPWORDS = set("""
a about above after again against all also am an and any are aren as at be because been before being
below between both but by can cannot could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just let me
more most my myself no nor not now of off on once only or other ought our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves one two three many much every get got make made today
""".split())


def mine_tags(sentences: DataFrame, size: int) -> list[str]:
    words = (sentences.where("status = 'kept'")
             .select("n_occurrences", F.explode(F.split(F.lower("text"), r"[^a-z]+")).alias("w"))
             .where(F.length("w") >= 3)
             .where(~F.col("w").isin(sorted(STOPWORDS))))
    top = (words.groupBy("w").agg(F.sum("n_occurrences").alias("c"))
           .orderBy(F.col("c").desc(), F.col("w")).limit(size).collect())
    return [r["w"] for r in top]


def merge_user_tags(mined: list[str], user: list[str], size: int) -> list[str]:
    out, seen = [], set()
    for t in [u.strip().lower() for u in user] + mined:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out[:max(size, len(user))]

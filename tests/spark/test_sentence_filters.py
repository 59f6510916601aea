"""The sentence filters' SQL over hostile text: a long dotted token (which overflowed the
stack of Java's regex engine, once per repeated group) is judged like any other text, and
real URLs are still found."""
from __future__ import annotations

from pyspark.sql import functions as F

from realsyn.jobs.lib.sentence_filters import URL_RE


def test_a_long_dotted_token_is_judged_and_urls_are_still_found(spark):
    texts = ["a." * 2500 + "a", "a." * 100_000 + "com", "see example.com for more", "go to www.test.org now",
             "https://x.y/z is a link", "a plain sentence about boats", "version 1.2.3 of the tool"]
    rows = spark.createDataFrame([(t,) for t in texts], "text string")
    got = [r[0] for r in rows.select(F.col("text").rlike(URL_RE)).collect()]
    assert got == [False, True, True, True, True, False, False]

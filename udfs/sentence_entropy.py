"""The information entropy filter's score: how evenly a sentence spreads over its words.

theta(x) = -sum_w p(w) ln p(w) / ln n, with p(w) = (times w occurs in x) / n and n the
sentence's word tokens (lowercased, split on anything but letters, digits and apostrophes):
the Shannon entropy of the sentence's own words over its maximum, ln n. A sentence with no
repeated word scores 1.0 and one word said over and over 0.0, at any length; the score
needs no corpus statistics and the log base cancels. A sentence of fewer than two tokens
has no spread to measure and scores 0.0. Why this reading of the paper: docs/decisions.md.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import pandas as pd

# \w is letters, digits and underscore; the underscore splits too, as in the SQL tokenizer.
TOKEN_RE = re.compile(r"(?:[^\w']|_)+")


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN_RE.split(text.lower()) if t]


def normalised_entropy(text: str | None) -> float:
    toks = tokens(text or "")
    n = len(toks)
    if n < 2:
        return 0.0
    h = -sum((c / n) * math.log(c / n) for c in Counter(toks).values())
    return max(0.0, h / math.log(n))   # max(): -0.0 and rounding below zero read as 0


def entropy_batch(texts: pd.Series) -> pd.Series:
    """One score per sentence (the pandas UDF body); null text scores 0.0."""
    return texts.map(normalised_entropy).astype("float64")

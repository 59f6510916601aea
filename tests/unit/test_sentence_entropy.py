"""The entropy filter's score keeps ordinary prose of every length and rejects repetition."""
import math

import pandas as pd
import pytest

from realsyn.jobs.core.config import load_config
from realsyn.udfs.sentence_entropy import entropy_batch, normalised_entropy, tokens

THRESHOLD = load_config("local").get("sentences.entropy_min")

PROSE = [
    "Dogs bark loudly.",
    "The cat sleeps on the warm windowsill.",
    "A restriction exists because the archive must stay consistent for every user.",
    # The example of a kept-by-intent sentence the old corpus reading rejected (0.26 < 0.3).
    "This restriction exists so that the package in the archive is always the one that users can rebuild.",
    "When the build fails, read the log from the top, because the first error is usually the one "
    "that explains all of the others, and the later errors are only its echoes.",
    "The administrator who maintains the mirror checks the logs every morning, compares the list of "
    "packages with the list of the previous day, and writes to the maintainers of the packages that "
    "failed to build, so that each of them can fix the problem before the next release of the "
    "distribution is frozen by the release team at the end of the month.",
    "Yes, yes, yes, I said yes to the offer.",
]
REPETITIONS = [
    "la la la la la la la la",
    "buy now buy now buy now buy now buy now buy now",
    "very very very very very very very good",
    "Ha ha ha ha ha ha ha ha ha ha ha ha.",
    "free free free free free download free free free free",
    "the the the the the the the the",
]


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_prose_of_every_length_is_kept(text):
    assert normalised_entropy(text) >= THRESHOLD, text


@pytest.mark.parametrize("text", REPETITIONS)
def test_repetition_is_rejected(text):
    assert normalised_entropy(text) < THRESHOLD, text


def test_prose_lengths_span_the_word_count_window():
    lengths = sorted(len(t.split()) for t in PROSE)
    assert lengths[0] == 3 and lengths[-1] > 60


def test_score_is_the_normalised_shannon_entropy():
    assert normalised_entropy("alpha beta gamma delta") == pytest.approx(1.0)
    assert normalised_entropy("spam spam spam spam") == 0.0
    p = [3 / 4, 1 / 4]   # "a a a b"
    assert normalised_entropy("a a a b") == pytest.approx(-sum(q * math.log(q) for q in p) / math.log(4))


def test_case_and_punctuation_do_not_count():
    assert tokens("Don't STOP, don't stop!") == ["don't", "stop", "don't", "stop"]
    assert normalised_entropy("Stop. STOP! stop?") == 0.0


def test_fewer_than_two_tokens_score_zero():
    assert normalised_entropy("?!?! ... !!!") == 0.0
    assert normalised_entropy("word") == 0.0
    assert normalised_entropy(None) == 0.0


def test_score_needs_no_corpus():
    """The same sentence scores the same whatever else is in the batch (no corpus statistics)."""
    alone = entropy_batch(pd.Series([PROSE[2]]))
    mixed = entropy_batch(pd.Series(["Der Hund bellt laut im Garten."] * 50 + [PROSE[2]] + REPETITIONS))
    assert alone.iloc[0] == mixed.iloc[50]
    assert entropy_batch(pd.Series([None, "a b"])).tolist() == [0.0, 1.0]

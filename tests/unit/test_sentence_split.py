from realsyn.udfs.sentence_split import document_sentences, normalise, sentence_id, split


def test_pysbd_handles_abbreviations():
    text = "Dr. Smith arrived at 5 p.m. on Monday. He was late! Was he tired?"
    assert split(text) == ["Dr. Smith arrived at 5 p.m. on Monday.", "He was late!", "Was he tired?"]


def test_regex_baseline_and_empty_input():
    assert split("One two three. Four five six.", "regex") == ["One two three.", "Four five six."]
    assert split(None) == [] and split("   ") == []


def test_ids_collapse_exact_duplicates_after_normalisation():
    assert normalise("  The  DOG\u00a0runs. ") == "the dog runs."
    assert sentence_id("The dog runs.") == sentence_id("the  dog runs.")
    assert sentence_id("The dog runs.") != sentence_id("The dog sits.")


def test_document_sentences_keep_order_and_repeats_and_skip_empty_slots():
    got = document_sentences([None, "One here. Two there.", "", "One here."], "regex")
    assert [g["text"] for g in got] == ["One here.", "Two there.", "One here."]
    assert got[0]["sentence_id"] == got[2]["sentence_id"] == sentence_id("one  HERE.")
    assert document_sentences(None) == []


def test_long_slots_are_split_in_bounded_pieces_at_natural_boundaries():
    from realsyn.udfs.sentence_split import PIECE_CHARS, pieces, split
    listing = " ".join(f"{i}." for i in range(1, 20000))          # list-like: pysbd's slow case
    cut = pieces(listing)
    assert "".join(cut) == listing and all(len(p) <= PIECE_CHARS for p in cut) and len(cut) > 10
    prose = "The boat is red. " * 400
    assert all(p.endswith(". ") for p in pieces(prose)[:-1])      # cut after a sentence end
    assert split(prose) == ["The boat is red."] * 400
    assert pieces("x" * (PIECE_CHARS * 2 + 5)) == ["x" * PIECE_CHARS] * 2 + ["x" * 5]   # no boundary: hard cut

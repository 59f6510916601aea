"""The sentence filters against a world's truth (jobs/world/filter_truth.py), and the planted
junk the world records for it (jobs/world/corpus.py)."""
import json
import random
from collections import Counter

import pyarrow.parquet as pq
from realsyn.jobs.world.corpus import TextRates, garbled_sentence, junk_sentence, write_world
from realsyn.jobs.world.filter_truth import DESCRIPTION, PROSE, filter_truth, sentence_classes, step_of
from realsyn.jobs.world.truth import attributes_of
from realsyn.udfs.sentence_split import split


def test_each_reason_falls_in_its_funnel_step():
    assert step_of(None) == "kept"
    assert step_of("url") == "no emoji / URL" and step_of("too_many_words") == "3-81 words"
    assert step_of("high_perplexity") == "perplexity" == step_of("ppl_undefined")
    assert step_of("low_entropy") == "entropy" and step_of("something_new") == "other"


def test_counts_per_class_and_the_headline_shares():
    counts = Counter({(DESCRIPTION, None): 9, (DESCRIPTION, "high_perplexity"): 1,
                      ("shuffled_words", "high_perplexity"): 3, ("shuffled_words", None): 1,
                      ("url", "url"): 4, (PROSE, None): 20})
    got = filter_truth(counts, Counter({DESCRIPTION: 11, "shuffled_words": 4, "url": 5}))
    assert [r["class"] for r in got["classes"]] == [DESCRIPTION, "shuffled_words", "url", PROSE]
    desc = got["classes"][0]
    assert (desc["planted"], desc["found"], desc["kept"], desc["removed_by"]) == (11, 10, 9, {"perplexity": 1})
    assert got["classes"][-1]["planted"] is None
    assert got["descriptions_kept"] == 0.9
    assert got["junk_removed"] == 7 / 8 and got["junk_removed_by_perplexity"] == 3 / 8
    assert filter_truth(Counter({(PROSE, None): 2}), Counter())["junk_removed"] is None


def test_planted_junk_is_recorded_where_it_sits_and_garbling_changes_no_other_draw(tmp_path):
    world = write_world(str(tmp_path / "w"), n_docs=40, n_images=30, n_eval_per_class=1, n_teacher=8)["out"]
    rows = pq.read_table(f"{world}/obelics/part-00000.parquet").to_pylist()
    by_url = {json.loads(r["general_metadata"])["url"]: r for r in rows}
    junk = pq.read_table(f"{world}/junk_sentences.parquet").to_pylist()
    kinds = Counter(j["kind"] for j in junk)
    assert kinds["shuffled_words"] + kinds["scrambled_letters"] >= 3 and len(kinds) >= 5
    for j in junk:
        assert j["sentence"] in by_url[j["doc_url"]]["texts"][j["slot"]]
    for j in junk:
        if j["kind"] in ("shuffled_words", "scrambled_letters"):
            assert j["sentence"] in split(by_url[j["doc_url"]]["texts"][j["slot"]])   # comes back whole
    classes = sentence_classes(world)
    assert Counter(classes.values())[DESCRIPTION] > 0
    assert {classes[j["sentence"]] for j in junk} <= set(kinds) | {DESCRIPTION}
    # Without garbled sentences the same world: the same descriptions and other junk, in the same slots.
    plain = write_world(str(tmp_path / "p"), n_docs=40, n_images=30, n_eval_per_class=1, n_teacher=8,
                        rates=TextRates(garbled=0.0))["out"]
    assert (pq.read_table(f"{plain}/truth_sentences.parquet").to_pylist()
            == pq.read_table(f"{world}/truth_sentences.parquet").to_pylist())
    assert (pq.read_table(f"{plain}/junk_sentences.parquet").to_pylist()
            == [j for j in junk if j["kind"] not in ("shuffled_words", "scrambled_letters")])


def test_garbled_sentences_keep_words_or_letters_but_not_the_order():
    rng = random.Random(1)
    kinds = Counter()
    for _ in range(50):
        kind, text = garbled_sentence(rng)
        kinds[kind] += 1
        assert text.endswith(".") and text[0].isupper() and len(text.split()) >= 3   # passes the cheap filters
        assert not attributes_of(text)   # page prose garbled: it names no coloured shape
    assert set(kinds) == {"shuffled_words", "scrambled_letters"}
    assert Counter(junk_sentence(random.Random(s))[0] for s in range(200)).keys() == {
        "emoji", "url", "too_few_words", "too_many_words", "no_action", "corpus_duplicate", "low_entropy"}


def test_an_old_world_without_a_junk_record_classes_descriptions_only(tmp_path):
    world = write_world(str(tmp_path / "w"), n_docs=3, n_images=6, n_eval_per_class=1, n_teacher=4)["out"]
    (tmp_path / "w" / "junk_sentences.parquet").unlink()
    assert set(sentence_classes(world).values()) == {DESCRIPTION}

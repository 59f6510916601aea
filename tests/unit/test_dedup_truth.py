"""Semantic sentence dedup against the world's truth: reading back the scene a description
states, and classing each dedup link (jobs/world/dedup_truth.py)."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from realsyn.jobs.world.dedup_truth import dedup_truth, link_kind
from realsyn.jobs.world.truth import (ShapeGroup, SceneSpec, describe, distractor_sentence, draw_spec, same_scene,
                                      stated_scene, zipf_frequencies)


def test_every_description_states_back_its_scene():
    rng = random.Random(3)
    freq = zipf_frequencies(rng)
    for _ in range(2000):
        spec = draw_spec(rng, freq)
        got = stated_scene(describe(spec, rng).text)
        assert got is not None and got.background == spec.background
        assert {(c, col, k, p) for c, _, col, k, p in got.groups} == {
            (g.count, g.colour, g.kind, g.position) for g in spec.groups}
        assert all(size is None or size in {g.size for g in spec.groups if g.concept == (colour, kind)}
                   for _, size, colour, kind, _ in got.groups)


def test_paraphrases_are_the_same_scene_and_one_changed_attribute_is_not():
    rng = random.Random(5)
    spec = SceneSpec((ShapeGroup("star", "red", "large", 2, "left"), ShapeGroup("ring", "blue", "small", 1, "right")),
                     "dotted")
    texts = {describe(spec, rng).text for _ in range(40)}
    assert len(texts) > 10
    scenes = [stated_scene(t) for t in texts]
    assert all(same_scene(a, b) for a in scenes for b in scenes)
    for other in (SceneSpec((ShapeGroup("star", "red", "large", 3, "left"), spec.groups[1]), "dotted"),   # count
                  SceneSpec((ShapeGroup("star", "red", "large", 2, "top"), spec.groups[1]), "dotted"),    # place
                  SceneSpec((ShapeGroup("cross", "red", "large", 2, "left"), spec.groups[1]), "dotted"),  # kind
                  SceneSpec(spec.groups, "plain"), SceneSpec(spec.groups[:1], "dotted")):
        assert not same_scene(scenes[0], stated_scene(describe(other, rng).text))
    # A size compares only where both sentences state one.
    assert same_scene(stated_scene("Two red stars on the left on a plain background."),
                      stated_scene("Two big red stars sit on the left against a plain background."))
    assert not same_scene(stated_scene("Two tiny red stars on the left on a plain background."),
                          stated_scene("Two big red stars sit on the left against a plain background."))


def test_prose_naming_no_coloured_shape_is_other_prose():
    rng = random.Random(1)
    desc = "A red circle sits on the left against a plain background."
    assert stated_scene(distractor_sentence(rng)) is None
    assert link_kind(distractor_sentence(rng), desc) == link_kind(desc, None) == "other_prose"
    assert link_kind(desc, "One red circle rests on the left side of a plain background.") == "same_scene"
    assert link_kind(desc, "A red circle sits on the right against a plain background.") == "different_scene"


def test_the_curve_gives_each_threshold_in_order_and_the_run_its_own_removals():
    at = {0.97: Counter(same_scene=2, different_scene=1), 0.9: Counter(same_scene=2, different_scene=1, other_prose=1),
          0.99: Counter(same_scene=1)}
    got = dedup_truth(at, Counter(same_scene=1, other_prose=3), scored=10)
    assert got["scored"] == 10
    assert got["removed"] == {"n": 4, "same_scene": 0.25, "different_scene": 0.0, "other_prose": 0.75}
    assert [(r["threshold"], r["n"], r["removed_share"]) for r in got["curve"]] == [(0.9, 4, 0.4), (0.97, 3, 0.3),
                                                                                   (0.99, 1, 0.1)]
    assert got["curve"][1]["same_scene"] == pytest.approx(2 / 3)
    empty = dedup_truth({0.9: Counter()}, Counter(), scored=0)
    assert empty["removed"]["same_scene"] is None and empty["curve"][0]["removed_share"] is None

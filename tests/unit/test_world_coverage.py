"""Concept coverage against the truth (jobs/world/coverage.py): hand-made pools whose figures
are known, and the card's section."""
import math

import pytest

from realsyn.jobs.world.coverage import Pair, coverage, goal_figures, measure, purity, reference
from realsyn.udfs.dataset_card import card_markdown

RED, BLUE, GREEN, PINK, CYAN = (("red", "circle"), ("blue", "square"), ("green", "star"), ("pink", "ring"),
                                ("cyan", "cross"))


def pairs(*spec):
    """spec: (concepts, cluster, min_cap) triples."""
    return [Pair(frozenset(c), k, m) for c, k, m in spec]


# A long tail: red in 6 pairs (one also blue), blue in 3, green 2, pink 1, cyan 1.
POOL = pairs(*[((RED,), 0, 2 if i < 2 else (4 if i < 4 else None)) for i in range(5)],
             ((RED, BLUE), 0, 8), ((BLUE,), 1, 2), ((BLUE,), 1, 4), ((GREEN,), 1, 2), ((GREEN,), 2, 2),
             ((PINK,), 2, 2), ((CYAN,), 2, 4))


def test_the_pool_fixes_the_head_and_the_rare_tail():
    ref = reference(POOL)
    assert ref.concepts == 5 and ref.head == RED
    assert ref.rare == frozenset({CYAN})             # 20% of 5 concepts; ties broken by name (cyan < pink)
    with pytest.raises(ValueError, match="no pair"):
        reference(pairs(((), 0, 2)))


def test_figures_of_a_set_of_pairs():
    ref = reference(POOL)
    got = measure(POOL, ref)
    counts = [6, 3, 2, 1, 1]
    want = -sum(k / 13 * math.log(k / 13) for k in counts) / math.log(5)
    assert got == {"pairs": 12, "entropy": pytest.approx(want), "head_share": pytest.approx(6 / 12),
                   "covered": 5, "rare_share": pytest.approx(1 / 12)}
    flat = measure(pairs(((RED,), 0, 2), ((BLUE,), 0, 2), ((GREEN,), 0, 2), ((PINK,), 0, 2), ((CYAN,), 0, 2)), ref)
    assert flat["entropy"] == pytest.approx(1.0) and flat["head_share"] == pytest.approx(0.2)


def test_purity_is_the_mean_share_of_each_clusters_top_concept():
    # cluster 0: red in all 6; cluster 1: blue 2 of 3; cluster 2: each concept once of 3.
    assert purity(POOL) == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    assert purity(pairs(((RED,), None, 2))) is None


def test_each_subset_beside_random_subsets_of_its_size():
    cov = coverage(POOL, caps=(2, 4, 8), seeds=5)
    assert [cov["subsets"][c]["subset"]["pairs"] for c in ("2", "4", "8")] == [6, 10, 11]
    cap2 = cov["subsets"]["2"]
    assert cap2["subset"]["head_share"] == pytest.approx(2 / 6) and cap2["subset"]["covered"] == 4
    mean, sd = cap2["random"]["head_share"]
    assert 0 <= mean <= 1 and sd >= 0
    assert coverage(POOL, caps=(2, 4, 8), seeds=5) == cov      # seeded: the same draws every time
    goals = goal_figures(cov)
    assert goals["head_share_cap_min"] == pytest.approx((2 / 6) / (6 / 12))
    e_mean, e_sd = cap2["random"]["entropy"]
    assert goals["entropy_gain_sd"] == pytest.approx((cap2["subset"]["entropy"] - e_mean) / e_sd)


def test_the_card_shows_the_coverage_table():
    cov = coverage(POOL, caps=(2, 4), seeds=3)
    data = {"subsets": {"2": 6, "4": 10}, "gold_rows": 12, "stages": [], "tables": {}, "coverage": cov}
    text = card_markdown(data, {})
    assert "### Concept coverage" in text and "(red circle)" in text
    assert "| cap 2 | 6 |" in text and "| pool | 12 |" in text
    assert " ± " in text.split("| cap 2 |")[1]

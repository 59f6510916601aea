"""Semantic sentence dedup against a world's truth: is a removed sentence a paraphrase of the
sentence it was linked to (the same scene), or a distinct description?

A world's descriptions are generated from scene specs (jobs/world/truth.py), so whether two
of them state the same scene is known exactly (`stated_scene`, `same_scene`). Each link
semantic_neighbours stores (a sentence, its closest earlier neighbour, their cosine) is one
of: `same_scene`, `different_scene`, or `other_prose` (either side names no coloured shape:
page prose or junk). A threshold removes the links at or above it, so one pass over the
stored links (counted by Spark) gives the whole curve; the run's own verdicts (removed sentence against its
representative) are counted beside it. Pure Python: the rows come from Spark
(jobs/world/truth_report.py).
"""
from __future__ import annotations

from collections import Counter

from realsyn.jobs.world.truth import same_scene, stated_scene

KINDS = ("same_scene", "different_scene", "other_prose")
THRESHOLDS = (0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)


def link_kind(text: str | None, other: str | None) -> str:
    """Which of KINDS the pair (a sentence, the one it was linked to) is."""
    a, b = stated_scene(text or ""), stated_scene(other or "")
    if a is None or b is None:
        return "other_prose"
    return "same_scene" if same_scene(a, b) else "different_scene"


def shares(counts: Counter) -> dict:
    """{n, same_scene, different_scene, other_prose}: the count and each kind's share of it."""
    n = sum(counts[k] for k in KINDS)
    return {"n": n, **{k: (counts[k] / n if n else None) for k in KINDS}}


def dedup_truth(at: dict[float, Counter], removed: Counter, scored: int) -> dict:
    """at: per threshold, the kinds of the links at or above it; removed: the kinds
    of the run's removed sentences against their representatives; scored: the sentences
    semantic dedup saw. {scored, removed: shares, curve: [{threshold, removed_share, shares}]}."""
    curve = []
    for t in sorted(at):
        row = shares(at[t])
        curve.append({"threshold": t, "removed_share": row["n"] / scored if scored else None, **row})
    return {"scored": scored, "removed": shares(removed), "curve": curve}

"""How evenly a set of pairs covers the world's concepts, against the truth (issue #43).

A pair holds the concepts of its image's scene (one or two (colour, kind) pairs). Over a set
of pairs, each concept's count is the number of pairs holding it. Everything is measured
against the *pool* (every exported pair, before any cap), which fixes the reference:
- entropy: the concept counts' Shannon entropy over ln(concepts in the pool), 1 = flat;
- head_share: share of pairs holding the pool's most frequent concept;
- covered: concepts with at least one pair;
- rare_share: share of pairs holding one of the pool's rarest 20% of concepts;
- purity (of the image clusters): per cluster, the share of its pairs holding its most
  common concept, averaged over clusters; 1 = every cluster is one concept.
A balanced subset is compared with random subsets of the same size drawn from the pool
(mean and sd over seeds). Pure Python.
"""
from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from realsyn.jobs.world.truth import Concept

RARE_SHARE = 0.2
METRICS = ("entropy", "head_share", "covered", "rare_share")


@dataclass(frozen=True)
class Pair:
    concepts: frozenset[Concept]
    cluster_id: int | None
    min_cap: int | None     # smallest cap whose subset holds the pair; None: no subset


@dataclass(frozen=True)
class Reference:
    """What the pool fixes: its concepts, its head and its rare tail."""
    concepts: int
    head: Concept
    rare: frozenset[Concept]


def concept_counts(pairs: Sequence[Pair]) -> Counter:
    return Counter(c for p in pairs for c in p.concepts)


def reference(pool: Sequence[Pair], rare_share: float = RARE_SHARE) -> Reference:
    counts = concept_counts(pool)
    if not counts:
        raise ValueError("no pair of the pool holds a concept of the world")
    ranked = sorted(counts, key=lambda c: (counts[c], c))         # rarest first, ties by name
    head = max(counts, key=lambda c: (counts[c], c))
    return Reference(len(counts), head, frozenset(ranked[:max(1, int(len(ranked) * rare_share))]))


def measure(pairs: Sequence[Pair], ref: Reference) -> dict:
    counts = concept_counts(pairs)
    n, total = len(pairs), sum(counts.values())
    entropy = -sum(k / total * math.log(k / total) for k in counts.values()) if total else 0.0
    return {"pairs": n,
            "entropy": entropy / math.log(ref.concepts) if ref.concepts > 1 else 0.0,
            "head_share": sum(ref.head in p.concepts for p in pairs) / n if n else 0.0,
            "covered": len(counts),
            "rare_share": sum(bool(p.concepts & ref.rare) for p in pairs) / n if n else 0.0}


def random_subsets(pool: Sequence[Pair], size: int, ref: Reference, seeds: int, seed: int = 0) -> dict:
    """{metric: [mean, sd]} over `seeds` random subsets of `size` pairs of the pool."""
    runs = [measure(random.Random(seed + s).sample(list(pool), size), ref) for s in range(seeds)]
    return {m: [statistics.mean(r[m] for r in runs), statistics.stdev(r[m] for r in runs) if seeds > 1 else 0.0]
            for m in METRICS}


def purity(pairs: Sequence[Pair]) -> float | None:
    """Mean over image clusters of the share of a cluster's pairs holding its most common concept."""
    clusters: dict[int, list[Pair]] = {}
    for p in pairs:
        if p.cluster_id is not None:
            clusters.setdefault(p.cluster_id, []).append(p)
    tops = ((concept_counts(members).most_common(1), len(members)) for members in clusters.values())
    shares = [top[0][1] / n for top, n in tops if top]
    return statistics.mean(shares) if shares else None


def coverage(pool: Sequence[Pair], caps: Sequence[int], seeds: int = 10, seed: int = 0) -> dict:
    """The card's coverage figures: the pool, then per cap its subset beside random subsets
    of the same size; the head and the rare tail named; the clusters' purity."""
    ref = reference(pool)
    subsets = {}
    for cap in sorted(caps):
        chosen = [p for p in pool if p.min_cap is not None and p.min_cap <= cap]
        subsets[str(cap)] = {"subset": measure(chosen, ref),
                             "random": random_subsets(pool, len(chosen), ref, seeds, seed) if chosen else None}
    return {"pool": measure(pool, ref), "subsets": subsets, "seeds": seeds, "purity": purity(pool),
            "reference": {**asdict(ref), "head": " ".join(ref.head), "rare": sorted(" ".join(c) for c in ref.rare)}}


def goal_figures(cov: dict) -> dict:
    """The issue's goals at the smallest cap: the subset's head share over the pool's (goal
    <= 0.5) and its entropy above random's in random's sd (goal >= 3)."""
    smallest = cov["subsets"][min(cov["subsets"], key=int)]
    head = smallest["subset"]["head_share"] / cov["pool"]["head_share"]
    mean, sd = smallest["random"]["entropy"] if smallest["random"] else (float("nan"), 0.0)
    gain = (smallest["subset"]["entropy"] - mean) / sd if sd else float("nan")
    return {"head_share_cap_min": head, "entropy_gain_sd": gain}

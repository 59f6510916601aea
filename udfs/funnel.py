"""Filter funnels: rows left after each filter stage, from a ledger's counts per reason,
and a PNG chart of them (like the paper's data-funnel figure).

Pure: counts in, steps / PNG out (matplotlib's Agg canvas, no pyplot state), so it is
tested without Spark; log_funnel() hands both to a stage's MLflow tracker.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field

# (stage label, reasons it rejects); None = every reason no other stage claims.
IMAGE_STAGES = [
    ("distinct URLs", {"duplicate_url"}),
    ("fetched + decoded", None),
    ("size + aspect ratio", {"too_small", "bad_aspect_ratio"}),
    ("exact dedup", {"duplicate_exact"}),
    ("perceptual dedup", {"duplicate_perceptual"}),
]
SENTENCE_STAGES = [
    ("distinct sentences", {"duplicate_sentence"}),
    ("no emoji / URL", {"emoji", "url"}),
    ("3-81 words", {"too_few_words", "too_many_words"}),
    ("complexity + action", {"low_complexity", "no_action"}),
    ("entropy", {"low_entropy"}),
    ("perplexity", {"ppl_undefined", "low_perplexity", "high_perplexity"}),
    ("other", None),
]


@dataclass
class Step:
    label: str
    remaining: int
    removed: dict[str, int] = field(default_factory=dict)   # reason -> rows this step removed


def funnel(rows_in: int, rejected: dict[str, int], stages: list, first_label: str,
           not_run: frozenset = frozenset()) -> list[Step]:
    """Steps from the input down; the last step's `remaining` is the kept count when the
    ledger balances. A catch-all stage (None) that removes nothing is left out; stages in
    not_run (filters switched off or without a model) are labelled so."""
    claimed = set().union(*(r for _, r in stages if r is not None))
    steps, left = [Step(first_label, rows_in)], rows_in
    for label, reasons in stages:
        removed = {r: n for r, n in sorted(rejected.items())
                   if (r in reasons if reasons is not None else r not in claimed) and n}
        if reasons is None and not removed:
            continue
        left -= sum(removed.values())
        steps.append(Step(label + (" (not run)" if label in not_run else ""), left, removed))
    return steps


def render_png(steps: list[Step], title: str, path: str) -> str:
    """Horizontal bars, one per step, with the count left and what the step removed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 0.55 * len(steps) + 1.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [s.label for s in steps][::-1]
    values = [s.remaining for s in steps][::-1]
    bars = ax.barh(range(len(steps)), values, color="#4c72b0")
    top = max(values + [1])
    for bar, step in zip(bars, steps[::-1]):
        removed = sum(step.removed.values())
        note = f"{step.remaining:,}" + (f"  (-{removed:,})" if removed else "")
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=9)
    ax.set_yticks(range(len(steps)), labels)
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel("rows left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def metric_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def log_funnel(tracker, ledger, stages: list, first_label: str, title: str,
               not_run: frozenset = frozenset()) -> list[Step]:
    """funnel/<ledger>.png and .json as MLflow artifacts, rows left after each step as metrics."""
    steps = funnel(ledger.rows_in, ledger.rejected, stages, first_label, not_run)
    if not tracker.enabled:
        return steps
    with tempfile.TemporaryDirectory() as tmp:
        png = render_png(steps, title, os.path.join(tmp, f"{ledger.name}.png"))
        with open(os.path.join(tmp, f"{ledger.name}.json"), "w") as f:
            json.dump([s.__dict__ for s in steps], f, indent=2)
        tracker.artifact(png, "funnel")
        tracker.artifact(f.name, "funnel")
    tracker.metrics({f"{ledger.name}.funnel.{i}_{metric_name(s.label.removesuffix(' (not run)'))}": s.remaining
                     for i, s in enumerate(steps)})
    return steps


@dataclass(frozen=True)
class PaperStep:
    label: str
    paper_remaining: int
    reasons: frozenset   # our rejection reasons this step of the paper stands for


# The paper's funnels (docs/paper.md): its pool, then rows left after each of its filter steps.
# Ours start where the paper's pool does: images once fetched and decoded, sentences as the
# splitter yields them (exact duplicates count in the redundancy step, where the paper removes
# duplicates, although our exact dedup runs first).
PAPER_FUNNELS = {
    "images": (("image pool", 336_000_000), ("images", "image_embeddings", "image_dedup"), [
        PaperStep("quality: size + aspect ratio", 285_000_000, frozenset({"too_small", "bad_aspect_ratio"})),
        PaperStep("redundancy: exact + perceptual + semantic dedup", 198_000_000,
                  frozenset({"duplicate_exact", "duplicate_perceptual", "duplicate_semantic"})),
    ]),
    "sentences": (("sentence pool", 2_130_000_000), ("sentences", "sentence_embeddings", "sentence_dedup"), [
        PaperStep("quality: emoji, URL, 3-81 words, complexity + action", 1_820_000_000,
                  frozenset({"control_characters", "emoji", "url", "too_few_words", "too_many_words",
                             "low_complexity", "no_action"})),
        PaperStep("semantic: entropy + perplexity", 1_160_000_000,
                  frozenset({"low_entropy", "ppl_undefined", "low_perplexity", "high_perplexity"})),
        PaperStep("redundancy: exact + perceptual + semantic dedup", 840_000_000,
                  frozenset({"duplicate_sentence", "duplicate_semantic"})),
    ]),
}
BEFORE_POOL_IMAGES = "image slots (before the paper's pool)"


def paper_comparison(ledgers: list[dict]) -> dict[str, list[dict]]:
    """Rows left after each of the paper's steps, ours beside the paper's, with the share of the
    rows reaching a step that it removes. ledgers: [{ledger, in, kept, rejected{}}] as in
    meta.stage_runs; a funnel whose first ledger is missing is left out. Rows: label, paper,
    ours, paper_removed, ours_removed (shares; None where nothing reached the step)."""
    by_name = {led["ledger"]: led for led in ledgers}
    out = {}
    for kind, ((pool_label, paper_pool), (first, *later), steps) in PAPER_FUNNELS.items():
        if first not in by_name:
            continue
        rejected: dict[str, int] = {}
        for name in (first, *later):
            for reason, n in by_name.get(name, {}).get("rejected", {}).items():
                rejected[reason] = rejected.get(reason, 0) + n
        claimed = set().union(*(s.reasons for s in steps))
        before = {r: n for r, n in rejected.items() if r not in claimed} if kind == "images" else {}
        pool = by_name[first]["in"] - sum(before.values())
        rows = []
        if before:
            rows.append({"label": BEFORE_POOL_IMAGES, "paper": None, "ours": by_name[first]["in"],
                         "paper_removed": None, "ours_removed": None})
        rows.append({"label": pool_label, "paper": paper_pool, "ours": pool, "paper_removed": None,
                     "ours_removed": None})
        paper_left, ours_left = paper_pool, pool
        for step in steps:
            removed = sum(n for r, n in rejected.items() if r in step.reasons)
            rows.append({"label": step.label, "paper": step.paper_remaining, "ours": ours_left - removed,
                         "paper_removed": 1 - step.paper_remaining / paper_left,
                         "ours_removed": removed / ours_left if ours_left else None})
            paper_left, ours_left = step.paper_remaining, ours_left - removed
        other = sum(n for r, n in rejected.items() if r not in claimed and kind != "images")
        if other:
            rows.append({"label": "other (no step of the paper)", "paper": None, "ours": ours_left - other,
                         "paper_removed": None, "ours_removed": other / ours_left if ours_left else None})
        out[kind] = rows
    return out

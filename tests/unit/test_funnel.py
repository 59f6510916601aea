"""Funnel steps from ledger counts, and the PNG they render to (no Spark)."""
import pytest
from PIL import Image

from realsyn.udfs.funnel import (BEFORE_POOL_IMAGES, IMAGE_STAGES, SENTENCE_STAGES, funnel, metric_name,
                                 paper_comparison, render_png)


def test_image_funnel_counts_each_stage():
    rejected = {"duplicate_url": 10, "http_404": 3, "timeout": 2, "corrupt": 1, "too_small": 4,
                "bad_aspect_ratio": 1, "duplicate_exact": 5, "duplicate_perceptual": 2}
    steps = funnel(100, rejected, IMAGE_STAGES, "image slots")
    assert [(s.label, s.remaining) for s in steps] == [
        ("image slots", 100), ("distinct URLs", 90), ("fetched + decoded", 84), ("size + aspect ratio", 79),
        ("exact dedup", 74), ("perceptual dedup", 72)]
    # Reasons no stage names (every fetch / decode failure) land in the catch-all stage.
    assert steps[2].removed == {"corrupt": 1, "http_404": 3, "timeout": 2}


def test_sentence_funnel_ends_at_kept_and_skips_an_empty_catch_all():
    rejected = {"duplicate_sentence": 40, "emoji": 2, "url": 3, "too_few_words": 5, "too_many_words": 0,
                "low_complexity": 6, "no_action": 4, "low_entropy": 7}
    rows_in, kept = 100, 100 - sum(rejected.values())
    steps = funnel(rows_in, rejected, SENTENCE_STAGES, "sentence occurrences")
    assert steps[-1].remaining == kept == 33
    assert [s.label for s in steps][-1] == "perplexity" and steps[-1].removed == {}
    assert steps[3].removed == {"too_few_words": 5}        # zero counts are not listed
    marked = funnel(rows_in, rejected, SENTENCE_STAGES, "sentence occurrences", frozenset({"perplexity"}))
    assert marked[-1].label == "perplexity (not run)"
    with_unknown = funnel(rows_in, {**rejected, "unknown": 1}, SENTENCE_STAGES, "sentence occurrences")
    assert with_unknown[-1].label == "other" and with_unknown[-1].remaining == kept - 1


def test_render_png_is_a_chart(tmp_path):
    steps = funnel(2_130_000, {"duplicate_sentence": 300_000, "low_entropy": 660_000}, SENTENCE_STAGES,
                   "sentence occurrences")
    path = render_png(steps, "sentences", str(tmp_path / "f.png"))
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= 600 and img.height >= 200
        # Not blank: the bars are drawn in their colour.
        assert (76, 114, 176) in {c for _, c in img.convert("RGB").getcolors(1 << 20)}


def test_metric_names_are_mlflow_safe():
    assert metric_name("no emoji / URL") == "no_emoji_url"
    assert metric_name("3-81 words") == "3_81_words"


def test_paper_comparison_puts_each_reason_in_the_papers_step():
    ledgers = [
        {"ledger": "images", "in": 100, "kept": 60,
         "rejected": {"duplicate_url": 5, "http_404": 5, "too_small": 18, "duplicate_exact": 7, "duplicate_perceptual": 5}},
        {"ledger": "image_embeddings", "in": 60, "kept": 50, "rejected": {"duplicate_semantic": 10}},
        {"ledger": "sentences", "in": 1000, "kept": 500,
         "rejected": {"duplicate_sentence": 100, "too_few_words": 150, "low_entropy": 100, "high_perplexity": 50,
                      "unknown": 100}},
    ]
    got = paper_comparison(ledgers)
    images = {r["label"]: r for r in got["images"]}
    assert images[BEFORE_POOL_IMAGES]["ours"] == 100
    assert images["image pool"]["ours"] == 90 and images["image pool"]["paper"] == 336_000_000
    quality, dedup = got["images"][2], got["images"][3]
    assert (quality["ours"], quality["ours_removed"]) == (72, 18 / 90)
    assert quality["paper_removed"] == pytest.approx(1 - 285 / 336)
    assert (dedup["ours"], dedup["ours_removed"]) == (50, 22 / 72)       # exact + perceptual + semantic
    sentences = [(r["label"].split(":")[0], r["ours"]) for r in got["sentences"]]
    # No sentence_embeddings ledger: semantic dedup removed nothing it could count.
    assert sentences == [("sentence pool", 1000), ("quality", 850), ("semantic", 700), ("redundancy", 600),
                         ("other (no step of the paper)", 500)]
    assert got["sentences"][2]["paper_removed"] == pytest.approx(1 - 1.16 / 1.82)
    assert paper_comparison([]) == {}

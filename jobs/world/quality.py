"""Data quality against the learnable world's ground truth, without training anything.

A text's attribute precision for an image is the share of the (colour, kind) concepts it
names (world_truth.attributes_of) that the image holds; a text that names none scores 0,
since it says nothing true about the picture. Averaged over pairs, it measures how often a
caption describes its image: the retrieved sentences and the synthetic text, beside the
baseline every web pipeline starts from, each image with its neighbouring text (the text
slot right after it in its document, else the one before).

Images are matched to their truth by file name: the world's image URLs are file URLs under
<world>/images/, so the figures hold wherever the world was written. Pure Python.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote, urlparse

from realsyn.jobs.world.truth import Concept, SceneSpec, attributes_of, spec_concepts


def image_key(url: str) -> str:
    """The world file name an image URL points at ("" for none)."""
    return os.path.basename(unquote(urlparse(url or "").path))


def read_truth(world: str) -> dict[str, frozenset[Concept]]:
    """file name -> the concepts its scene holds (corpus images only)."""
    import pyarrow.parquet as pq
    path = os.path.join(world, "truth.parquet")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not a world folder (write one with `realsyn sample --world`)")
    return {r["image"]: spec_concepts(SceneSpec.from_json(r["spec"])) for r in pq.read_table(path).to_pylist()}


def text_precision(text: str | None, truth: frozenset[Concept]) -> float:
    return precision_and_named(text, truth)[0]


def precision_and_named(text: str | None, truth: frozenset[Concept]) -> tuple[float, bool]:
    """(attribute precision, whether the text names any concept), from one parse."""
    named = attributes_of(text or "")
    return (len(named & truth) / len(named) if named else 0.0), bool(named)


def neighbouring_text(images: Sequence[str | None], texts: Sequence[str | None]) -> dict[str, str]:
    """image url -> the text slot right after it, else the nearest one before ("" if none)."""
    out: dict[str, str] = {}
    for i, url in enumerate(images):
        if not url:
            continue
        after = next((t for t in texts[i + 1:] if t), None)
        before = next((t for t in reversed(texts[:i]) if t), None)
        out.setdefault(url, after if after is not None else (before or ""))
    return out


def neighbouring_pairs(obelics_rows: Iterable[Mapping]) -> dict[str, str]:
    """The baseline's pairs over OBELICS documents (first occurrence of each image URL)."""
    out: dict[str, str] = {}
    for row in obelics_rows:
        images, texts = row["images"], row["texts"]   # lists, or numpy arrays from pandas
        images = [] if images is None else list(images)
        texts = [] if texts is None else list(texts)
        for url, text in neighbouring_text(images, texts).items():
            out.setdefault(url, text)
    return out

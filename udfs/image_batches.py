"""Batches of images bounded by pixels as well as rows.

Images are reduced as they are opened (udfs/image_decode.open_rgb with a fit), so a square
image held in a batch has its shorter side below 2*fit. A long thin one keeps its length,
though: 64 panoramas could still fill a worker. The chunks below are cut from the images'
headers (read without decoding pixels) so no chunk holds more pixels than `rows` square
images at the fit would; a single image over that budget is a chunk of its own.
"""
from __future__ import annotations

import io

from PIL import Image

from realsyn.udfs.image_decode import SAFE_FORMATS, reduce_factor


def held_pixels(data: bytes | None, fit: int | None) -> int:
    """Pixels the image holds once opened with `fit`; 0 when its header cannot be read (the
    open then fails on its own and the row is rejected with its reason)."""
    if not data:
        return 0
    try:
        with Image.open(io.BytesIO(data), formats=SAFE_FORMATS) as im:
            width, height = im.size
    except Exception:
        return 0
    factor = reduce_factor(width, height, fit)
    return -(-width // factor) * -(-height // factor)


def pixel_budget(rows: int, fit: int) -> int:
    return rows * (2 * fit) ** 2


def bounded_chunks(blobs: list, rows: int, fit: int | None) -> list[tuple[int, int]]:
    """(start, stop) ranges over `blobs`: at most `rows` each, and at most pixel_budget pixels
    each once opened (a lone image over the budget gets a range of its own)."""
    budget = pixel_budget(rows, fit) if fit else None
    ranges, start, held = [], 0, 0
    for i, data in enumerate(blobs):
        px = held_pixels(data, fit) if budget else 0
        if i > start and (i - start >= rows or (budget and held + px > budget)):
            ranges.append((start, i))
            start, held = i, 0
        held += px
    if start < len(blobs):
        ranges.append((start, len(blobs)))
    return ranges

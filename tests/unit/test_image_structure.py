"""The structures that make Pillow slow are refused before it opens the bytes; real images
of every format pass untouched."""
from __future__ import annotations

import io
import pytest
from PIL import Image

from realsyn.udfs.image_decode import DecodeLimits, decode
from realsyn.udfs.image_structure import structure_reason
from tests.fuzz_corpus import bmp_rle, gif_with_comment, jpeg_com_flood, png_chunk_flood

LIMITS = DecodeLimits(max_pixels=89_478_485, max_jpeg_scans=64, formats=("JPEG", "PNG", "GIF", "WEBP", "BMP"))


def saved(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 110), (10, 200, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("data,reason", [
    (png_chunk_flood(), "png_chunk_flood"), (gif_with_comment(2 << 20), "gif_oversized_extension"),
    (jpeg_com_flood(), "jpeg_marker_flood"), (bmp_rle(9459, 9459), "bmp_rle_too_large"),
])
def test_costly_structures_are_refused_by_name(data, reason):
    assert structure_reason(data) == reason
    assert decode(data, LIMITS).reason == reason


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("GIF", {}), ("JPEG", {"progressive": True}), ("BMP", {}),
                                    ("WEBP", {}), ("JPEG", {"comment": b"x" * 1000})])
def test_real_images_pass(fmt, kw):
    data = saved(fmt, **kw)
    assert structure_reason(data) is None
    got = decode(data, LIMITS)
    assert got.reason is None and (got.width, got.height) == (120, 110)


def test_small_versions_of_each_structure_pass():
    assert structure_reason(gif_with_comment(10_000)) is None and structure_reason(gif_with_comment(200_000))
    assert structure_reason(bmp_rle(100, 100)) is None

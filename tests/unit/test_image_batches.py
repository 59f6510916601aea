"""Images are reduced as they are opened, and batches are bounded by pixels as well as rows."""
import io

from PIL import Image

from realsyn.udfs.image_batches import bounded_chunks, held_pixels, pixel_budget
from realsyn.udfs.image_decode import open_rgb, reduce_factor


def encoded(w: int, h: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 140, 30)).save(buf, fmt)
    return buf.getvalue()


def test_reduce_factor_keeps_the_shorter_side_at_least_fit():
    assert reduce_factor(6000, 4000, 224) == 17 and 4000 // 17 >= 224
    assert reduce_factor(400, 300, 224) == 1
    assert reduce_factor(6000, 4000, None) == 1


def test_large_images_are_held_small_in_every_format():
    for fmt in ("PNG", "JPEG", "BMP", "GIF"):
        img = open_rgb(encoded(3000, 2000, fmt), fit=224)
        assert img.mode == "RGB"
        assert 224 <= min(img.size) < 2 * 224, (fmt, img.size)
        assert abs(img.size[0] / img.size[1] - 1.5) < 0.02, (fmt, img.size)   # ratio kept
    assert open_rgb(encoded(3000, 2000)).size == (3000, 2000)               # no fit, no change
    assert open_rgb(encoded(100, 80), fit=224).size == (100, 80)            # never enlarged


def test_held_pixels_matches_what_opening_holds():
    for w, h in ((3000, 2000), (5000, 300), (200, 100)):
        data = encoded(w, h)
        img = open_rgb(data, fit=64)
        assert held_pixels(data, 64) == img.size[0] * img.size[1]
    assert held_pixels(b"not an image", 64) == 0 and held_pixels(None, 64) == 0


def test_chunks_are_bounded_by_rows_and_by_pixels():
    small, thin = encoded(300, 300), encoded(20000, 64)   # a panorama keeps its length
    assert bounded_chunks([small] * 10, 4, 64) == [(0, 4), (4, 8), (8, 10)]
    assert held_pixels(thin, 64) > pixel_budget(4, 64) / 2
    chunks = bounded_chunks([thin] * 5, 4, 64)
    assert len(chunks) == 5                                 # each one alone: two would pass the budget
    assert all(sum(held_pixels(thin, 64) for _ in range(b - a)) <= max(pixel_budget(4, 64), held_pixels(thin, 64))
               for a, b in chunks)
    mixed = [small, thin, small, small]
    flat = [i for a, b in bounded_chunks(mixed, 4, 64) for i in range(a, b)]
    assert flat == list(range(4))                           # every row once, in order
    assert bounded_chunks([], 4, 64) == []
    assert bounded_chunks([small] * 5, 2, None) == [(0, 2), (2, 4), (4, 5)]

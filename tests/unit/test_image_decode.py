import io

from PIL import Image

from realsyn.jobs.sample_corpus import png_bomb
from realsyn.udfs.image_decode import decode, hamming, phash
from tests.http_fixture import jpeg

LIMIT = 89_478_485


def test_good_image_is_measured():
    d = decode(jpeg(320, 200), LIMIT)
    assert (d.reason, d.width, d.height, d.format) == (None, 320, 200, "JPEG")
    assert len(d.image_id) == 64 and isinstance(d.phash, int)


def test_bad_bytes_get_reasons():
    good = jpeg(320, 200)
    assert decode(b"", LIMIT).reason == "empty"
    assert decode(None, LIMIT).reason == "empty"
    assert decode(b"<html></html>", LIMIT).reason == "not_an_image"
    assert decode(good[: len(good) // 3], LIMIT).reason in ("truncated", "corrupt")
    assert decode(b"\xff\xd8\xff\xe0" + b"\x13" * 300, LIMIT).reason in ("corrupt", "not_an_image", "truncated")


def test_decompression_bomb_is_refused_from_the_header():
    d = decode(png_bomb(50_000, 50_000), LIMIT)
    assert d.reason == "decompression_bomb"


def test_phash_is_close_for_near_duplicates_and_far_for_different_images():
    base = Image.new("RGB", (200, 200), (255, 255, 255))
    base.paste((200, 30, 30), (20, 30, 120, 150))
    base.paste((30, 30, 200), (110, 100, 190, 190))
    buf = io.BytesIO()
    base.resize((190, 190)).save(buf, "JPEG", quality=70)
    near = Image.open(io.BytesIO(buf.getvalue()))
    other = Image.new("RGB", (200, 200), (255, 255, 255))
    other.paste((0, 0, 0), (0, 0, 200, 100))
    assert hamming(phash(base), phash(near)) <= 4
    assert hamming(phash(base), phash(other)) > 10
    buf = io.BytesIO()
    base.save(buf, "PNG")
    assert decode(buf.getvalue(), LIMIT).phash == phash(base)

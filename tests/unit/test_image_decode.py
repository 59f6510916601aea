import io

from PIL import Image

from realsyn.jobs.corpora.sample_corpus import png_bomb
from realsyn.udfs.image_decode import DecodeLimits, decode, hamming, phash
from tests.http_fixture import jpeg

LIMIT = DecodeLimits(max_pixels=89_478_485)


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


def many_scan_jpeg(scans: int) -> bytes:
    """A progressive JPEG whose scans are repeated: valid markers, decode time grows with them."""
    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (30, 140, 90)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    first, end = data.index(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:first] + data[first:end] * (scans // data[first:end].count(b"\xff\xda") + 1) + data[end:]


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    import time
    t0 = time.monotonic()
    d = decode(many_scan_jpeg(3000), LIMIT)
    assert d.reason == "too_many_scans" and d.phash is None
    assert time.monotonic() - t0 < 2.0
    assert decode(many_scan_jpeg(20), DecodeLimits(max_pixels=LIMIT.max_pixels, max_jpeg_scans=100)).reason is None


def test_only_accepted_formats_are_tried():
    """A plugin that would run an external program (like EPS via Ghostscript) is never consulted."""
    from PIL import ImageFile
    consulted = []

    class External(ImageFile.ImageFile):
        format = "EXTERNALTEST"

        def _open(self):
            consulted.append(True)
            self._size, self._mode = (200, 200), "RGB"

    Image.register_open("EXTERNALTEST", External, lambda prefix: prefix.startswith(b"%!EXT"))
    try:
        assert decode(b"%!EXT-1.0\n" + b"0" * 200, LIMIT).reason == "not_an_image"
        assert consulted == []
        eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 200\nshowpage\n"
        assert decode(eps, LIMIT).reason == "not_an_image"
    finally:
        Image.OPEN.pop("EXTERNALTEST", None)
        Image.ID.remove("EXTERNALTEST")


def test_exif_orientation_is_applied_before_hashing_and_opening():
    from realsyn.udfs.image_decode import open_rgb
    upright = Image.new("RGB", (300, 120), (255, 255, 255))
    upright.paste((200, 20, 20), (0, 0, 150, 120))
    stored = upright.transpose(Image.Transpose.ROTATE_90)     # what a camera writes, plus the tag below
    exif = Image.Exif()
    exif[0x0112] = 6                                           # rotate 90 clockwise to display
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    d = decode(buf.getvalue(), LIMIT)
    assert (d.width, d.height) == (300, 120)
    assert hamming(d.phash, phash(upright)) <= 4
    assert open_rgb(buf.getvalue()).size == (300, 120)


def test_the_decode_body_decodes_each_content_once_across_batches():
    import hashlib

    import pandas as pd

    from realsyn.udfs.decode_rows import decode_fn
    from realsyn.udfs.image_decode import DecodeLimits
    a, b = jpeg(120, 90), jpeg(130, 90, (10, 200, 10))
    ida, idb = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
    batches = [pd.DataFrame({"image_id": [ida, ida, idb], "bytes": [a, a, b]}),
               pd.DataFrame({"image_id": [idb, ida], "bytes": [b, a]})]
    out = pd.concat(list(decode_fn(DecodeLimits(max_pixels=10**8), 10**7)(iter(batches))), ignore_index=True)
    assert sorted(out["image_id"]) == sorted([ida, idb])
    assert out.set_index("image_id").loc[ida, "width"] == 120


def test_a_decode_task_puts_pillows_bomb_guard_back_when_it_ends():
    """A reused Python worker must not keep one run's images.max_pixels: the next run's
    export opened its accepted images under it and refused them."""
    from PIL import Image

    import pandas as pd

    from realsyn.udfs.decode_rows import decode_fn
    from realsyn.udfs.image_decode import DecodeLimits, open_rgb
    guard = Image.MAX_IMAGE_PIXELS
    small = jpeg(100, 100)
    batch = pd.DataFrame({"image_id": ["a"], "bytes": [small]})
    out = list(decode_fn(DecodeLimits(max_pixels=20_000), 10**7)(iter([batch])))
    assert out[0]["decode_reason"].isna().all() and Image.MAX_IMAGE_PIXELS == guard
    assert open_rgb(jpeg(300, 200), 64).size[0] >= 64     # 60,000 pixels: over 2 x 20,000

"""A generated corpus of bad input, one case per kind, across ingest, image and sentence stages.

Each case says where its outcome shows up (a document, an image URL, a sentence) and which
outcomes are acceptable: a rejection reason, or `kept` for hostile-looking but valid input.
The corpus is written next to a small healthy sample, so every later stage has work to do.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from realsyn.jobs.corpora.sample_corpus import draw_picture, encode, png_bomb, write_sample

SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                    ("metadata", pa.string()), ("general_metadata", pa.string())])
GOOD_TEXT = "A fisherman repairs the wooden boat near the harbor at sunset."
FETCH_FAILURES = {"connection_error", "timeout", "dns_error", "request_error", "fetch_error"}


@dataclass
class Case:
    kind: str
    where: str                   # document | image | sentence | file
    expect: set[str]             # acceptable outcomes: reasons, or "kept"
    doc: dict | None = None      # the OBELICS row carrying the case (document / image / sentence)
    url: str = ""                # image cases: the URL to look up in silver.images
    probe: str = ""              # sentence cases: a substring of the sentence
    file: str = ""               # file cases: the input file
    extra: dict = field(default_factory=dict)


def doc(kind: str, images: list, texts: list, metadata=None, general=None) -> dict:
    meta = json.dumps(metadata if metadata is not None else [None] * len(images))
    gm = general if general is not None else json.dumps({"url": f"https://fuzz.example/{kind}"})
    return {"images": images, "texts": texts, "metadata": meta, "general_metadata": gm}


def image_doc(kind: str, url: str) -> dict:
    return doc(kind, [url, None], [None, GOOD_TEXT])


def words(n: int, seed: str) -> str:
    vocab = ["river", "stone", "lantern", "harbor", "meadow", "violin", "copper", "garden", "falcon", "window"]
    return " ".join(([seed] + [vocab[i % len(vocab)] for i in range(n - 1)])[:n])


def jpeg_with_claimed_size(w: int, h: int) -> bytes:
    """A valid small JPEG whose frame header is patched to claim w x h pixels."""
    data = bytearray(encode(Image.new("RGB", (64, 64), (90, 120, 200)), "JPEG"))
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC2):
            data[i + 5:i + 7], data[i + 7:i + 9] = h.to_bytes(2, "big"), w.to_bytes(2, "big")
            return bytes(data)
        i += 2 + length
    raise ValueError("no frame header")


def invalid_utf8_table(general: str, column: str = "texts") -> pa.Table:
    """One row whose text (or image URL) bytes are not UTF-8 (pyarrow would refuse them from Python str)."""
    bad = b"Caf\xe9 au lait \xff\xfe on the terrace." if column == "texts" else b"http://example.com/caf\xe9\xff.jpg"
    offsets = pa.py_buffer(bytes(memoryview(pa.array([0, len(bad)], pa.int32()).buffers()[1])))
    values = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(bad)])
    bad_list = pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), values)
    nulls = pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array([None], pa.string()))
    images, texts = (nulls, bad_list) if column == "texts" else (bad_list, nulls)
    return pa.Table.from_arrays([images, texts, pa.array(["[null]"]), pa.array([general])], schema=SCHEMA)


def image_files(root: Path) -> dict[str, bytes]:
    """Image-file kinds served via file:// from under the sample root."""
    import random
    rng = random.Random(11)
    good = encode(draw_picture(rng, 320, 240), "JPEG")
    png = encode(draw_picture(rng, 200, 200), "PNG")
    cmyk, big16, pal = io.BytesIO(), io.BytesIO(), io.BytesIO()
    draw_picture(rng, 240, 200).convert("CMYK").save(cmyk, "JPEG")
    Image.new("I;16", (220, 180), 40000).save(big16, "PNG")
    p = draw_picture(rng, 210, 210).convert("P")
    p.info["transparency"] = 0
    p.save(pal, "PNG")
    anim = io.BytesIO()
    frames = [draw_picture(rng, 200, 160).convert("P") for _ in range(3)]
    frames[0].save(anim, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    webp = io.BytesIO()
    draw_picture(rng, 260, 200).save(webp, "WEBP")
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1)).save(tiny, "GIF")
    return {
        "img_corrupt.jpg": b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(800)),
        "img_truncated.jpg": good[: len(good) // 2],
        "img_truncated.png": png[: len(png) // 2],
        "img_zero_bytes.png": b"",
        "img_html_body.jpg": b"<!doctype html><html><body>404</body></html>",
        "img_svg.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500"/>',
        "img_png_bomb.png": png_bomb(),
        "img_jpeg_bomb_header.jpg": jpeg_with_claimed_size(60000, 60000),
        "img_too_small.jpg": encode(draw_picture(rng, 99, 300), "JPEG"),
        "img_exactly_100.png": encode(draw_picture(rng, 100, 100), "PNG"),
        "img_ratio_over_3.png": encode(draw_picture(rng, 301, 100), "PNG"),
        "img_ratio_exactly_3.png": encode(draw_picture(rng, 300, 100), "PNG"),
        "img_1x1.gif": tiny.getvalue(),
        "img_cmyk.jpg": cmyk.getvalue(),
        "img_16bit.png": big16.getvalue(),
        "img_palette_transparent.png": pal.getvalue(),
        "img_animated.gif": anim.getvalue(),
        "img_webp.webp": webp.getvalue(),
        "img_random_noise.bin": bytes(rng.getrandbits(8) for _ in range(4096)),
        "img_many_scans.jpg": many_scan_jpeg(encode(draw_picture(rng, 160, 120), "JPEG"), 600),
        "img_eps.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 300 300\n0 0 moveto 300 300 lineto stroke\nshowpage\n",
        "img_exif_rotated.jpg": exif_rotated(draw_picture(rng, 300, 200)),
        "img_png_chunk_flood.png": png_chunk_flood(),
        "img_gif_comment_200kb.gif": gif_with_comment(200_000),   # under the fuzz run's fetch.max_bytes
        "img_jpeg_com_flood.jpg": jpeg_com_flood(),
        "img_bmp_rle_9459.bmp": bmp_rle(9459, 9459),
    }


def saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 110), (10, 200, 30)).save(buf, fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunk_flood() -> bytes:
    """5,000 empty ancillary chunks before the image data."""
    png = saved("PNG")
    return png[:33] + png_chunk(b"tEXt", b"") * 5000 + png[33:]


def gif_with_comment(size: int) -> bytes:
    """A comment extension of `size` bytes (Pillow joins its sub-blocks quadratically)."""
    gif = saved("GIF")
    blocks = b"".join(bytes([255]) + b"c" * 255 for _ in range(size // 255)) + b"\x00"
    cut = gif.index(b"\x2c")     # before the first image descriptor
    return gif[:cut] + b"\x21\xfe" + blocks + gif[cut:]


def jpeg_com_flood() -> bytes:
    """2,000 COM segments before the first scan."""
    jpg = saved("JPEG")
    return jpg[:2] + (b"\xff\xfe" + struct.pack(">H", 12) + b"0123456789") * 2000 + jpg[2:]


def bmp_rle(width: int, height: int) -> bytes:
    """An RLE8 bitmap header claiming width x height (a few bytes of data)."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, 0, 0, 0, 256, 0)
    palette = b"\x00\x00\x00\x00" * 256
    pixels = b"\x00\x01"            # end of bitmap
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels


def many_scan_jpeg(baseline: bytes, scans: int) -> bytes:
    """A progressive JPEG whose scans repeat: decoding time would grow with their number."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(baseline)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    first, end = data.index(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:first] + data[first:end] * (scans // data[first:end].count(b"\xff\xda") + 1) + data[end:]


def exif_rotated(img: Image.Image) -> bytes:
    """Stored sideways with an EXIF orientation tag that turns it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


DECODE_FAILURES = {"corrupt", "truncated", "not_an_image", "empty", "decompression_bomb"}


def cases(root: Path, base: str) -> list[Case]:
    """Every kind. `base` is the loopback HTTP server (tests/http_fixture.py)."""
    out: list[Case] = []
    files = image_files(root / "images")
    expect_file = {
        "img_corrupt.jpg": {"corrupt", "truncated", "not_an_image"}, "img_truncated.jpg": {"truncated", "corrupt"},
        "img_truncated.png": {"truncated", "corrupt"}, "img_zero_bytes.png": {"empty"},
        "img_html_body.jpg": {"not_an_image"}, "img_svg.svg": {"not_an_image"},
        "img_png_bomb.png": {"decompression_bomb"}, "img_jpeg_bomb_header.jpg": {"decompression_bomb"},
        "img_too_small.jpg": {"too_small"}, "img_exactly_100.png": {"kept"},
        "img_ratio_over_3.png": {"bad_aspect_ratio"}, "img_ratio_exactly_3.png": {"kept"},
        "img_1x1.gif": {"too_small"}, "img_cmyk.jpg": {"kept"}, "img_16bit.png": {"kept"},
        "img_palette_transparent.png": {"kept"}, "img_animated.gif": {"kept"}, "img_webp.webp": {"kept"},
        "img_random_noise.bin": {"not_an_image"}, "img_many_scans.jpg": {"too_many_scans"},
        "img_eps.eps": {"not_an_image"}, "img_exif_rotated.jpg": {"kept"},
        "img_png_chunk_flood.png": {"png_chunk_flood"}, "img_gif_comment_200kb.gif": {"gif_oversized_extension"},
        "img_jpeg_com_flood.jpg": {"jpeg_marker_flood"}, "img_bmp_rle_9459.bmp": {"bmp_rle_too_large"},
    }
    for name, data in files.items():
        (root / "images" / name).write_bytes(data)
        url = (root / "images" / name).as_uri()
        out.append(Case(name.replace(".", "_"), "image", expect_file[name], image_doc(name, url), url=url))
    (root / "images" / "escape_link.jpg").symlink_to("/etc/hostname")
    os.mkfifo(root / "images" / "fifo.jpg")
    (root / "outside.png").write_bytes(files["img_exactly_100.png"])   # beside images/, never served
    os.link(root / "outside.png", root / "images" / "hard_link.png")
    for tail in ("\u3000", "\x0b"):   # a good file, and beside it a link whose name only adds a space
        (root / "images" / f"inside.jpg{tail}").symlink_to("/etc/passwd")
    (root / "images" / "inside.jpg").write_bytes(files["img_exactly_100.png"])
    port = base.rsplit(":", 1)[1]
    drip = {"timeout", "bad_response"}
    hostile = {
        "file_missing": ((root / "images" / "no_such_file.jpg").as_uri(), {"not_found"}),
        "file_outside_root": ("file:///etc/passwd", {"outside_file_root"}),
        "file_dotdot_escape": (f"file://{root}/images/../../../../etc/passwd", {"outside_file_root"}),
        "file_symlink_escape": ((root / "images" / "escape_link.jpg").as_uri(), {"outside_file_root"}),
        "scheme_ftp": ("ftp://example.com/a.jpg", {"scheme_not_allowed"}),
        "scheme_data_uri": ("data:image/png;base64,iVBORw0KGgo=", {"scheme_not_allowed", "invalid_url"}),
        "scheme_javascript": ("javascript:alert(1)", {"scheme_not_allowed", "invalid_url"}),
        "url_empty_string": ("", {"invalid_url"}),
        "url_scheme_only": ("http://", {"invalid_url"}),
        "url_bad_port": ("http://127.0.0.1:99999/x.jpg", {"invalid_url"}),
        "url_control_chars": ("http://example.com/a\x00b.jpg", {"invalid_url"}),
        "private_ip_literal": ("http://10.1.2.3/x.jpg", {"blocked_address"}),
        "private_ip_decimal": ("http://167772161/x.jpg", {"blocked_address"}),
        "link_local_metadata": ("http://169.254.169.254/latest/meta-data/", {"blocked_address"}),
        "unspecified_address": ("http://0.0.0.0:9/x.jpg", {"blocked_address"}),
        "unresolvable_host": ("http://no-such-host.invalid/x.jpg", {"dns_error"}),
        "closed_port": ("http://127.0.0.1:9/x.jpg", {"connection_error"}),
        "ipv6_loopback_closed": (f"http://[::1]:{port}/img/a.jpg", FETCH_FAILURES | {"kept"}),
        "credentials_in_url": (f"http://user:secret@127.0.0.1:{port}/img/cred.jpg", {"invalid_url"}),
        "url_userinfo_host_confusion": (f"http://example.com@127.0.0.1:{port}/img/u.jpg", {"invalid_url"}),
        "url_backslash_authority": (f"http://127.0.0.1:{port}\\@10.0.0.1/img/b.jpg", {"invalid_url"}),
        "url_percent_encoded_host": (f"http://%31%32%37.0.0.1:{port}/img/p.jpg", {"invalid_url"}),
        "url_trailing_unicode_space": (f"{base}/img/s.jpg\u3000", {"invalid_url"}),
        "url_vertical_tab": (f"{base}/img/v.jpg\x0b", {"invalid_url"}),
        "shared_address_space": ("http://100.64.0.1/x.jpg", {"blocked_address"}),
        "benchmarking_range": ("http://198.18.0.1/x.jpg", {"blocked_address"}),
        "ipv6_mapped_private": ("http://[::ffff:10.0.0.1]/x.jpg", {"blocked_address"}),
        "ipv6_6to4_private": ("http://[2002:a00:1::1]/x.jpg", {"blocked_address"}),
        "ipv6_nat64_private": ("http://[64:ff9b::a00:1]/x.jpg", {"blocked_address"}),
        "redirect_backslash_to_private": (f"{base}/redirect-to?{quote('http://127.0.0.1:1' + chr(92) + '@10.0.0.1/x')}",
                                          {"invalid_url"}),
        "redirect_to_mapped_private": (f"{base}/redirect-to?{quote('http://[::ffff:10.0.0.1]/x.jpg')}",
                                       {"blocked_address"}),
        "drip_headers": (f"{base}/drip-headers", drip),
        "drip_interim_responses": (f"{base}/drip-interim", drip),
        "drip_chunk_sizes": (f"{base}/drip-chunks", drip),
        "interim_then_image": (f"{base}/interim-then-ok", {"kept", "duplicate_exact"}),
        "file_fifo": ((root / "images" / "fifo.jpg").as_uri(), {"not_regular_file"}),
        "file_hard_link": ((root / "images" / "hard_link.png").as_uri(), {"hard_link"}),
        "file_symlink_unicode_space": (f"file://{root}/images/inside.jpg\u3000", {"invalid_url"}),
        "file_symlink_vertical_tab": (f"file://{root}/images/inside.jpg\x0b", {"invalid_url"}),
        "http_404": (f"{base}/missing", {"http_404"}),
        "http_500_after_retries": (f"{base}/always500", {"http_500"}),
        "redirect_loop": (f"{base}/loop", {"too_many_redirects"}),
        "redirect_to_private": (f"{base}/redirect-private", {"blocked_address"}),
        "redirect_ok": (f"{base}/redirect-ok", {"kept", "duplicate_exact"}),  # same bytes as another URL
        "slow_loris": (f"{base}/slowloris", {"timeout"}),
        "huge_body": (f"{base}/huge", {"too_large"}),
        "huge_body_no_length": (f"{base}/huge-no-length", {"too_large"}),
        "opt_out_noai": (f"{base}/noai", {"opt_out"}),
        "opt_out_noimageai": (f"{base}/noimageai", {"opt_out"}),
        "html_content_type": (f"{base}/html", {"not_an_image"}),
    }
    for kind, (url, expect) in hostile.items():
        out.append(Case(kind, "image", expect, image_doc(kind, url), url=url))

    g = lambda kind: json.dumps({"url": f"https://fuzz.example/{kind}"})  # noqa: E731
    million = " ".join(["A cat sat."] * 1_000_000)
    documents = {
        "null_lists": ({"images": None, "texts": None, "metadata": None, "general_metadata": g("null_lists")},
                       {"null_lists"}),
        "unequal_lists": (doc("unequal_lists", [None], [GOOD_TEXT, None]), {"unequal_lengths"}),
        "slot_both_set": (doc("slot_both_set", ["http://x/a.jpg"], [GOOD_TEXT]), {"slot_both_set"}),
        "slot_neither_set": (doc("slot_neither_set", [None, None], [GOOD_TEXT, None]), {"slot_neither_set"}),
        "bad_metadata_json": ({**doc("bad_metadata_json", [None], [GOOD_TEXT]), "metadata": "[{oops"},
                              {"invalid_metadata_json"}),
        "bad_general_metadata_json": ({**doc("x", [None], [GOOD_TEXT]), "general_metadata": "{\"url\": "},
                                      {"invalid_general_metadata_json"}),
        "too_many_slots": (doc("too_many_slots", [None] * 20001, [GOOD_TEXT] * 20001), {"too_many_slots"}),
        "million_sentence_document": (doc("million_sentence_document", [None], [million]), {"too_much_text"}),
        "url_too_long": (doc("url_too_long", ["http://example.com/" + "a" * 5000, None], [None, GOOD_TEXT]),
                         {"url_too_long"}),
        "empty_lists": (doc("empty_lists", [], []), {"empty_document"}),
        "blank_texts_only": (doc("blank_texts_only", [None, None], ["   ", "\n\t"]), {"empty_document"}),
        "metadata_not_a_list": ({**doc("metadata_not_a_list", [None], [GOOD_TEXT]), "metadata": "{\"a\": 1}"},
                                {"kept"}),
        "null_general_metadata": ({**doc("x", [None], ["A baker sells fresh bread at the market."]),
                                   "general_metadata": None}, {"kept"}),
        "duplicate_document": (doc("duplicate_document", [None], ["A pilot lands the plane in the rain."]),
                               {"duplicate_document", "kept"}),
    }
    for kind, (row, expect) in documents.items():
        out.append(Case(kind, "document", expect, row))
    out.append(Case("duplicate_document_copy", "document", {"duplicate_document", "kept"},
                    dict(documents["duplicate_document"][0])))

    sentences = {
        "emoji": ("The dog chases the ball across the yard \U0001F436.", "chases the ball across", {"emoji"}),
        "url_in_text": ("See the photos at https://example.org/gallery today.", "example.org/gallery", {"url"}),
        "two_words": ("Zebra quartz.", "Zebra quartz", {"too_few_words"}),
        "three_words_exactly": ("Ravens circled overhead.", "Ravens circled overhead", {"kept", "low_entropy"}),
        "eighty_one_words": (words(81, "Marigold") + ".", "Marigold river", {"kept", "low_entropy"}),
        "eighty_two_words": (words(82, "Tangerine") + ".", "Tangerine river", {"too_many_words"}),
        "control_characters": ("The bell rang \x07\x1b[31m loudly in the tower today.", "rang", {"control_characters"}),
        "nul_character": ("A nul\x00 byte hides inside this quiet sentence here.", "byte hides", {"control_characters"}),
        "bidi_override": ("The invoice total is \u202egnp.exe\u202c for the order.", "invoice total",
                          {"control_characters"}),
        "zero_width_chars": ("A\u200b child\u200b flies a kite on the windy hill.", "flies a kite",
                             {"kept", "low_entropy", "control_characters"}),
        "punctuation_only": ("?!?! ... !!! ???", "?!?!", {"too_few_words", "low_entropy"}),
        "one_huge_word": ("X" + "y" * 10_000 + ".", "yyyyyyyyyy", {"too_few_words"}),
        "html_markup": ("<div><script>alert('x')</script></div> The chef plates the dessert carefully.",
                        "plates the dessert", {"kept", "low_entropy", "control_characters"}),
        "tabs_and_newlines": ("The\ttrain\n\nleaves the\r\nstation at noon.", "leaves the",  # line breaks split
                              {"kept", "low_entropy", "too_few_words"}),
        "repeated_gibberish": ("Blorp blorp blorp blorp blorp blorp blorp.", "Blorp blorp",
                               {"kept", "low_entropy"}),
        # overflowed the stack of Java's regex engine in the URL check (one frame per ".a")
        "long_dotted_token": ("a." * 2500 + "a", "a.a.a.a.a", {"too_few_words"}),
        # pysbd's time grows faster than the text on list-like slots: split in bounded pieces
        "list_like_slot": (" ".join(f"{i}." for i in range(1, 8000)), "4117.", {"too_few_words"}),
    }
    for kind, (text, probe, expect) in sentences.items():
        out.append(Case(kind, "sentence", expect, doc(kind, [None], [text]), probe=probe))
    return out


def write_fuzz(out_dir: str, base_url: str, healthy_docs: int = 30) -> tuple[Path, list[Case]]:
    """The healthy sample plus fuzz files in <out>/obelics; returns (root, cases)."""
    info = write_sample(out_dir, n_docs=healthy_docs, seed=13)
    root = Path(info["out"])
    all_cases = cases(root, base_url)
    rows = [c.doc for c in all_cases if c.doc is not None]
    fuzz_file = root / "obelics" / "part-00002-fuzz.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), fuzz_file)
    for i, c in enumerate(x for x in all_cases if x.doc is not None):
        c.file, c.extra["row_index"] = str(fuzz_file), i
    utf8_file = root / "obelics" / "part-00003-invalid-utf8.parquet"
    pq.write_table(invalid_utf8_table(json.dumps({"url": "https://fuzz.example/invalid_utf8"})), utf8_file)
    all_cases.append(Case("invalid_utf8_text", "file", {"invalid_utf8"}, file=str(utf8_file)))
    url_file = root / "obelics" / "part-00005-invalid-utf8-url.parquet"
    pq.write_table(invalid_utf8_table(json.dumps({"url": "https://fuzz.example/invalid_utf8_url"}), "images"), url_file)
    all_cases.append(Case("invalid_utf8_image_url", "file", {"invalid_utf8"}, file=str(url_file)))
    missing = root / "obelics" / "part-00004-missing-column.parquet"
    pq.write_table(pa.table({"images": pa.array([["http://x/a.jpg"]]), "texts": pa.array([[None]])}), missing)
    all_cases.append(Case("missing_column_file", "file", {"wrong_column_types"}, file=str(missing)))
    wrong = root / "obelics" / "part-00001-wrong-types.parquet"   # written by write_sample
    all_cases.append(Case("wrong_column_types_file", "file", {"wrong_column_types"}, file=str(wrong)))
    return root, all_cases


def not_parquet(path: str) -> str:
    """A file that is not parquet at all: the run must stop with a clear error instead."""
    with open(path, "wb") as fh:
        fh.write(b"images,texts\nhttp://x/a.jpg,hello\n")
    return path




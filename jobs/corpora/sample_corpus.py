"""Deterministic OBELICS-format sample corpus that exercises every filter of the paper.

Writes <out>/obelics/part-00000.parquet (the real dataset's schema), a second file with
wrong column types, and <out>/images/ with the pictures the documents link to (file://).
Nothing here needs a network or Spark.
"""
from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

SUBJECTS = ["a young woman", "an old man", "a brown dog", "a small child", "two cyclists", "a black cat",
            "the chef", "a group of students", "a farmer", "the orchestra", "a red fox", "the pilot",
            "a street vendor", "three horses", "the goalkeeper", "a tourist", "a fisherman", "the baker"]
VERBS = ["walks along", "rides across", "paints", "repairs", "jumps over", "photographs", "carries",
         "cleans", "climbs", "watches", "crosses", "feeds", "builds", "sells", "plays near", "guards"]
OBJECTS = ["the wooden bridge", "a blue bicycle", "the old lighthouse", "a basket of apples",
           "the stone wall", "a yellow kite", "the frozen lake", "a pile of books", "the city market",
           "a vintage car", "the green field", "a tall tree", "the sandy beach", "a snowy mountain"]
PLACES = ["at sunset", "in the morning", "during the festival", "under heavy rain", "near the harbor",
          "in a quiet village", "on a busy street", "after the storm", "in early spring", "at night"]
NOUN_PHRASES = ["A red car.", "The view from the hill.", "Our new kitchen.", "Photo gallery.",
                "Summer collection 2021."]
EMOJI = ["\U0001F600", "\U0001F436", "\U0001F389", "\u2764\ufe0f"]
OBELICS_SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                           ("metadata", pa.string()), ("general_metadata", pa.string())])
COLORS = [(200, 40, 40), (40, 160, 60), (40, 80, 200), (220, 200, 40), (120, 60, 160), (30, 30, 30),
          (240, 240, 240), (250, 140, 20)]


def sentence(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}."
    return s[0].upper() + s[1:]


def paragraph(rng: random.Random) -> str:
    parts = [sentence(rng) for _ in range(rng.randint(1, 4))]
    roll = rng.random()
    if roll < 0.10:
        parts.append(f"{sentence(rng)[:-1]} {rng.choice(EMOJI)}.")
    elif roll < 0.18:
        parts.append(f"Read more at https://example.org/story/{rng.randint(1, 999)} today.")
    elif roll < 0.26:
        parts.append("Click here.")                       # too short: 2 words
    elif roll < 0.32:
        parts.append(" ".join([sentence(rng)[:-1].lower() for _ in range(10)]) + ".")  # > 81 words
    elif roll < 0.42:
        parts.append(rng.choice(NOUN_PHRASES))            # no action: complexity filter
    elif roll < 0.48:
        parts.append("The weather was lovely and everyone enjoyed the day.")  # corpus-wide duplicate
    elif roll < 0.52:
        parts.append("Sale sale sale sale sale sale today.")   # one word over and over: low entropy
    return " ".join(parts)


def draw_picture(rng: random.Random, width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), rng.choice(COLORS))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):
        x0, y0 = rng.randint(0, width - 1), rng.randint(0, height - 1)
        x1, y1 = min(width, x0 + rng.randint(5, max(6, width // 2))), min(height, y0 + rng.randint(5, max(6, height // 2)))
        shape = rng.choice([draw.rectangle, draw.ellipse])
        shape([x0, y0, x1, y1], fill=rng.choice(COLORS))
    return img


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=90) if fmt == "JPEG" else img.save(buf, format=fmt)
    return buf.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def make_images(rng: random.Random, out: Path, n_random: int = 110) -> list[str]:
    """Write the image files; return the file names documents may link to."""
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []

    def save(name: str, data: bytes) -> None:
        (out / name).write_bytes(data)
        names.append(name)

    sizes = [(rng.randint(120, 640), rng.randint(120, 480)) for _ in range(n_random)]
    sizes += [(60, 80), (99, 300), (100, 100), (300, 100), (301, 100), (100, 301), (640, 150), (40, 40)]
    for i, (w, h) in enumerate(sizes):
        img = draw_picture(rng, w, h)
        fmt = "JPEG" if i % 3 else "PNG"
        save(f"img_{i:04d}.{'jpg' if fmt == 'JPEG' else 'png'}", encode(img, fmt))
        if i % 9 == 0:   # exact duplicate bytes under another name
            save(f"img_{i:04d}_copy.{'jpg' if fmt == 'JPEG' else 'png'}", (out / names[-1]).read_bytes())
        if i % 7 == 0:   # near duplicate: re-encoded and slightly resized
            save(f"img_{i:04d}_near.jpg", encode(img.resize((w - 2, h - 2)), "JPEG"))
    for name, data in bad_image_files(rng, (out / names[1]).read_bytes()):
        save(name, data)
    return names


def bad_image_files(rng: random.Random, good: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of files the image decoder must reject; `good` is a valid image's bytes."""
    return [("corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(500))),
            ("truncated.jpg", good[: len(good) // 3]),
            ("empty.png", b""),
            ("not_an_image.jpg", b"<html><body>This is a web page, not a picture.</body></html>"),
            ("bomb.png", png_bomb())]


def build_documents(rng: random.Random, image_urls: list[str], n_docs: int) -> list[dict]:
    docs: list[dict[str, Any]] = []
    for d in range(n_docs):
        images: list[str | None] = []
        texts: list[str | None] = []
        meta: list[dict[str, str | None] | None] = []
        for _ in range(rng.randint(2, 7)):
            if rng.random() < 0.4:
                url = rng.choice(image_urls)
                images.append(url)
                texts.append(None)
                meta.append({"src": url, "alt_text": sentence(rng) if rng.random() < 0.5 else None})
            else:
                images.append(None)
                texts.append(paragraph(rng))
                meta.append(None)
        general = {"url": f"https://news.example.com/article/{d}", "warc_filename": "sample.warc.gz",
                   "warc_record_offset": d * 1000, "warc_record_length": 1000}
        docs.append({"images": images, "texts": texts, "metadata": meta, "general_metadata": json.dumps(general)})
    for i, url in enumerate(image_urls):   # every image file is linked at least once
        doc = docs[i % n_docs]
        doc["images"].append(url)
        doc["texts"].append(None)
        doc["metadata"].append({"src": url, "alt_text": None})
    for doc in docs:
        doc["metadata"] = json.dumps(doc["metadata"])
    return docs


def bad_documents(rng: random.Random, image_urls: list[str]) -> list[dict]:
    """One of each kind of bad row the ingest stage must reject with a reason."""
    g = json.dumps({"url": "https://bad.example.com/x"})
    return [
        {"images": [None, image_urls[0]], "texts": ["A woman reads a book in the park.", None, "extra"],
         "metadata": "[null, null, null]", "general_metadata": g},                        # unequal_lengths
        {"images": [image_urls[1]], "texts": ["A man rides a horse."], "metadata": "[null]",
         "general_metadata": g},                                                           # slot_both_set
        {"images": [None, None], "texts": [None, "A boy kicks a ball."], "metadata": "[null, null]",
         "general_metadata": g},                                                           # slot_neither_set
        {"images": [None], "texts": ["A girl paints a fence in the yard."], "metadata": "{not json",
         "general_metadata": g},                                                           # invalid json
        {"images": [], "texts": [], "metadata": "[]", "general_metadata": g},              # empty_document
        {"images": None, "texts": None, "metadata": None, "general_metadata": g},          # null_lists
        {"images": [None], "texts": ["   "], "metadata": "[null]", "general_metadata": g},  # blank text only
        # hostile URLs: refused by the fetcher, never read
        {"images": ["file:///etc/passwd", None, "ftp://example.com/a.jpg", "http://127.0.0.1:9/x.jpg"],
         "texts": [None, "A crowd gathers to watch the parade downtown.", None, None],
         "metadata": "[null, null, null, null]", "general_metadata": g},
    ]


def write_sample(out_dir: str, n_docs: int = 300, seed: int = 7, n_images: int = 110) -> dict:
    rng = random.Random(seed)
    out = Path(out_dir).resolve()
    names = make_images(rng, out / "images", n_images)
    urls = [(out / "images" / n).as_uri() for n in names]
    docs = build_documents(rng, urls, n_docs) + bad_documents(rng, urls)
    docs.append(dict(docs[0]))                     # an exact duplicate document
    rng.shuffle(docs)
    return {"out": str(out), "documents": write_obelics(out, docs), "images": len(names)}


def write_obelics(out: Path, docs: list[dict]) -> int:
    """<out>/obelics/: the documents in the OBELICS schema, and one file with wrong column
    types; returns the number of rows written."""
    (out / "obelics").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(docs, schema=OBELICS_SCHEMA), out / "obelics" / "part-00000.parquet")
    wrong = pa.table({"images": ["http://example.com/a.jpg"], "texts": [json.dumps(["text"])],
                      "metadata": ["[]"], "general_metadata": ["{}"]})   # images is a string, not a list
    pq.write_table(wrong, out / "obelics" / "part-00001-wrong-types.parquet")
    return len(docs) + 1

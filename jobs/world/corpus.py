"""The learnable-world corpus: OBELICS documents whose texts describe images found elsewhere.

Like the sample (sample_corpus.py) it holds every bad input the pipeline must reject, but
its pictures are procedural scenes (world_scene.py) with a known truth (world_truth.py),
and the documents carry paraphrased, sometimes wrong, descriptions of images that sit in
OTHER documents, next to distractor prose: what RealSyn's retrieval must find. The text
next to an image mostly does not describe it, as on real pages. Writes, under <out>/:

  obelics/part-00000.parquet    the documents (OBELICS schema), bad rows included
  obelics/part-00001-...        a file with wrong column types (as the sample)
  images/                       the corpus pictures (file:// URLs), copies, near copies, bad files
  truth.parquet                 image file name -> its scene (SceneSpec JSON) and role
  truth_sentences.parquet       every description in the documents: where, of which image, what swap
  junk_sentences.parquet        every planted sentence a filter must reject: where, and of which kind
  eval/<class>/*.png            held-out zero-shot set (ImageFolder), eval/classes.json the prompts
  teacher/pairs.parquet         held-out noisy alt-text pairs (image_path relative to teacher/)

The eval and teacher sets come from their own rng streams and never enter the corpus.
Nothing here needs a network or Spark.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from realsyn.jobs.corpora.sample_corpus import EMOJI, NOUN_PHRASES, bad_documents, bad_image_files, encode, write_obelics
from realsyn.jobs.world.scene import draw_scene
from realsyn.jobs.world.truth import (Concept, SceneSpec, all_concepts, class_name, class_prompts, class_spec,
                                      describe, distractor_sentence, draw_spec, zipf_frequencies)

IMAGE_SIDES = (112, 128, 144)   # all pass images.min_side_px (100)
EVAL_SIDE = 128


@dataclass(frozen=True)
class WorldImage:
    name: str
    spec: SceneSpec
    role: str   # original | copy (same bytes) | near_duplicate | too_small | bad_aspect


@dataclass(frozen=True)
class TextRates:
    related: float = 0.3     # text next to an image that describes it
    noise: float = 0.15      # a description states one attribute wrongly
    alt_text: float = 0.3    # an image slot's alt_text is set
    alt_noise: float = 0.3   # alt texts are noisier than the prose
    junk: float = 0.1        # a paragraph carries one sentence a filter must reject
    garbled: float = 0.1     # a paragraph carries one off-grammar or garbled sentence (only a language model tells)


def streams(seed: int) -> dict[str, random.Random]:
    """Independent rngs per output, so a bigger teacher set never changes the corpus (and
    the garbled sentences, drawn from their own stream, change no other draw)."""
    return {name: random.Random(f"{seed}:{name}") for name in ("concepts", "corpus", "eval", "teacher", "garbled")}


def make_world_images(rng: random.Random, freq: dict[Concept, float], out: Path,
                      n_images: int) -> tuple[list[WorldImage], list[str]]:
    """The corpus pictures (with truth) and the bad files; both lists are names under out."""
    out.mkdir(parents=True, exist_ok=True)
    images: list[WorldImage] = []

    def save(name: str, data: bytes, spec: SceneSpec, role: str) -> None:
        (out / name).write_bytes(data)
        images.append(WorldImage(name, spec, role))

    for i in range(n_images):
        spec = draw_spec(rng, freq)
        side = rng.choice(IMAGE_SIDES)
        img = draw_scene(spec, rng, side)
        role = "original"
        if i % 40 == 13:     # below the size filter
            img, role = img.resize((64, 64)), "too_small"
        elif i % 40 == 27:   # outside the aspect-ratio filter
            img, role = img.resize((side * 7 // 2, side)), "bad_aspect"
        fmt = "JPEG" if i % 3 else "PNG"
        ext = "jpg" if fmt == "JPEG" else "png"
        save(f"w_{i:04d}.{ext}", encode(img, fmt), spec, role)
        if i % 9 == 0:   # exact duplicate bytes under another name
            save(f"w_{i:04d}_copy.{ext}", (out / images[-1].name).read_bytes(), spec, "copy")
        if i % 7 == 0:   # near duplicate: re-encoded and slightly resized
            w, h = img.size
            save(f"w_{i:04d}_near.jpg", encode(img.resize((w - 2, h - 2)), "JPEG"), spec, "near_duplicate")
    bad = []
    for name, data in bad_image_files(rng, (out / images[1].name).read_bytes()):
        (out / name).write_bytes(data)
        bad.append(name)
    return images, bad


def junk_sentence(rng: random.Random) -> tuple[str, str]:
    """(kind, sentence): one sentence of a kind the sentence filters reject (as the sample's
    paragraphs have)."""
    kind = rng.randrange(7)
    if kind == 0:
        return "emoji", f"{distractor_sentence(rng)[:-1]} {rng.choice(EMOJI)}."
    if kind == 1:
        return "url", f"Read more at https://example.org/story/{rng.randint(1, 999)} today."
    if kind == 2:
        return "too_few_words", "Click here."
    if kind == 3:
        return "too_many_words", " ".join(distractor_sentence(rng)[:-1].lower() for _ in range(12)) + "."
    if kind == 4:
        return "no_action", rng.choice(NOUN_PHRASES)
    if kind == 5:
        return "corpus_duplicate", "The weather was lovely and everyone enjoyed the day."
    return "low_entropy", "Sale sale sale sale sale sale today."


def garbled_sentence(rng: random.Random) -> tuple[str, str]:
    """(kind, sentence): page prose no cheaper filter catches, only a language model: its
    words in random order (off-grammar), or each word's letters scrambled (garbled)."""
    words = distractor_sentence(rng)[:-1].lower().split()
    if rng.random() < 0.5:
        rng.shuffle(words)
        kind = "shuffled_words"
    else:
        words = ["".join(rng.sample(w, len(w))) for w in words]
        kind = "scrambled_letters"
    text = " ".join(words)
    return kind, text[0].upper() + text[1:] + "."


@dataclass
class DocumentWriter:
    """Slots of one document, and the truth rows of the descriptions placed in it."""
    url: str
    rng: random.Random
    rates: TextRates
    truth: list[dict[str, Any]]
    junk: list[dict[str, Any]]
    garble: random.Random

    def __post_init__(self) -> None:
        self.images: list[str | None] = []
        self.texts: list[str | None] = []
        self.meta: list[dict[str, str | None] | None] = []

    def note(self, sentence: str, image: WorldImage, placement: str, swap: Any) -> None:
        self.truth.append({"doc_url": self.url, "slot": len(self.texts), "sentence": sentence, "image": image.name,
                           "placement": placement, "swap": json.dumps(swap.__dict__) if swap else None})

    def paragraph(self, described: list[tuple[str, WorldImage, Any]], placement: str, distractors: int) -> None:
        sentences = [distractor_sentence(self.rng) for _ in range(distractors)]
        for text, image, swap in described:
            self.note(text, image, placement, swap)
            sentences.insert(self.rng.randint(0, len(sentences)), text)
        if self.rng.random() < self.rates.junk:
            self.plant(sentences, self.rng, junk_sentence(self.rng))
        if self.garble.random() < self.rates.garbled:
            self.plant(sentences, self.garble, garbled_sentence(self.garble))
        self.images.append(None)
        self.texts.append(" ".join(sentences))
        self.meta.append(None)

    def plant(self, sentences: list[str], rng: random.Random, junk: tuple[str, str]) -> None:
        kind, text = junk
        sentences.insert(rng.randint(0, len(sentences)), text)
        self.junk.append({"doc_url": self.url, "slot": len(self.texts), "sentence": text, "kind": kind})

    def image(self, url: str, image: WorldImage | None) -> None:
        alt = None
        if image and self.rng.random() < self.rates.alt_text:
            d = describe(image.spec, self.rng, self.rates.alt_noise)
            self.note(d.text, image, "alt_text", d.swap)
            alt = d.text
        self.images.append(url)
        self.texts.append(None)
        self.meta.append({"src": url, "alt_text": alt})

    def row(self) -> dict[str, Any]:
        general = {"url": self.url, "warc_filename": "world.warc.gz", "warc_record_offset": 0,
                   "warc_record_length": 1000}
        return {"images": self.images, "texts": self.texts, "metadata": json.dumps(self.meta),
                "general_metadata": json.dumps(general)}


def build_world_documents(rng: random.Random, images: list[WorldImage], bad: list[str], url_of: dict[str, str],
                          n_docs: int, n_alt: int, rates: TextRates,
                          garble: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    """(documents, truth rows, planted junk rows). Each image is linked once, in its home document, followed by
    a text slot (describing it with probability rates.related); n_alt descriptions of it go
    to other documents, mixed into their prose."""
    linked: list[WorldImage | str] = [*images, *bad]
    rng.shuffle(linked)
    home: dict[int, list[WorldImage | str]] = {d: [] for d in range(n_docs)}
    for k, item in enumerate(linked):
        home[k % n_docs].append(item)
    elsewhere: dict[int, list[tuple[str, WorldImage, Any]]] = {d: [] for d in range(n_docs)}
    for k, item in enumerate(linked):
        if isinstance(item, str) or n_docs < 2:
            continue
        for _ in range(n_alt):
            d = rng.randrange(n_docs - 1)
            d += d >= k % n_docs   # any document but its home
            desc = describe(item.spec, rng, rates.noise)
            elsewhere[d].append((desc.text, item, desc.swap))
    docs: list[dict] = []
    truth: list[dict[str, Any]] = []
    junk: list[dict[str, Any]] = []
    for d in range(n_docs):
        w = DocumentWriter(f"https://world.example.com/page/{d}", rng, rates, truth, junk, garble)
        pending = elsewhere[d]
        rng.shuffle(pending)

        def take(least: int, most: int) -> list[tuple[str, WorldImage, Any]]:
            n = min(len(pending), rng.randint(least, most))
            taken = pending[:n]
            del pending[:n]
            return taken

        w.paragraph(take(0, 2), "elsewhere", rng.randint(1, 3))
        for item in home[d]:
            image = None if isinstance(item, str) else item
            w.image(url_of[image.name if image else str(item)], image)
            if image and rng.random() < rates.related:
                desc = describe(image.spec, rng, rates.noise)
                w.paragraph([(desc.text, image, desc.swap)], "adjacent", rng.randint(0, 1))
            else:
                w.paragraph(take(0, 1), "elsewhere", rng.randint(1, 3))
        while pending:
            w.paragraph(take(1, 3), "elsewhere", rng.randint(1, 2))
        docs.append(w.row())
    return docs, truth, junk


def write_eval(rng: random.Random, out: Path, n_per_class: int) -> int:
    """<out>/<class>/NNN.png (ImageFolder) and <out>/classes.json {class folder: prompts}."""
    prompts = {}
    for colour, kind in all_concepts():
        name = class_name(kind, colour)
        prompts[name] = class_prompts(kind, colour)
        (out / name).mkdir(parents=True, exist_ok=True)
        for j in range(n_per_class):
            img = draw_scene(class_spec(rng, (colour, kind)), rng, EVAL_SIDE)
            (out / name / f"{j:03d}.png").write_bytes(encode(img, "PNG"))
    (out / "classes.json").write_text(json.dumps(prompts, indent=1, sort_keys=True))
    return len(prompts) * n_per_class


def write_teacher(rng: random.Random, freq: dict[Concept, float], out: Path, n_pairs: int, noise: float) -> int:
    """<out>/pairs.parquet (image_path relative to out, text, noisy) and <out>/images/."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_pairs):
        spec = draw_spec(rng, freq)
        img: Image.Image = draw_scene(spec, rng, rng.choice(IMAGE_SIDES))
        path = f"images/t_{i:05d}.jpg"
        (out / path).write_bytes(encode(img, "JPEG"))
        d = describe(spec, rng, noise)
        rows.append({"image_path": path, "text": d.text, "noisy": d.noisy})
    schema = pa.schema([("image_path", pa.string()), ("text", pa.string()), ("noisy", pa.bool_())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / "pairs.parquet")
    return len(rows)


def write_world(out_dir: str, n_docs: int = 300, seed: int = 7, n_images: int = 400, n_eval_per_class: int = 4,
                n_alt: int = 2, n_teacher: int = 2000, rates: TextRates = TextRates(),
                teacher_noise: float = 0.3) -> dict:
    rngs = streams(seed)
    freq = zipf_frequencies(rngs["concepts"])
    out = Path(out_dir).resolve()
    rng = rngs["corpus"]
    images, bad = make_world_images(rng, freq, out / "images", n_images)
    url_of = {n: (out / "images" / n).as_uri() for n in [*(i.name for i in images), *bad]}
    docs, truth, junk = build_world_documents(rng, images, bad, url_of, n_docs, n_alt, rates, rngs["garbled"])
    docs += bad_documents(rng, [url_of[images[0].name], url_of[images[1].name]])
    docs.append(dict(docs[0]))                     # an exact duplicate document
    rng.shuffle(docs)
    n_rows = write_obelics(out, docs)
    pq.write_table(pa.Table.from_pylist([{"image": i.name, "spec": i.spec.to_json(), "role": i.role} for i in images],
                                        schema=pa.schema([("image", pa.string()), ("spec", pa.string()),
                                                          ("role", pa.string())])), out / "truth.parquet")
    pq.write_table(pa.Table.from_pylist(truth, schema=pa.schema([
        ("doc_url", pa.string()), ("slot", pa.int32()), ("sentence", pa.string()), ("image", pa.string()),
        ("placement", pa.string()), ("swap", pa.string())])), out / "truth_sentences.parquet")
    pq.write_table(pa.Table.from_pylist(junk, schema=pa.schema([
        ("doc_url", pa.string()), ("slot", pa.int32()), ("sentence", pa.string()), ("kind", pa.string())])),
        out / "junk_sentences.parquet")
    n_eval = write_eval(rngs["eval"], out / "eval", n_eval_per_class)
    n_pairs = write_teacher(rngs["teacher"], freq, out / "teacher", n_teacher, teacher_noise)
    return {"out": str(out), "documents": n_rows, "images": len(url_of), "eval_images": n_eval,
            "teacher_pairs": n_pairs}

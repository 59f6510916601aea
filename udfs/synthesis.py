"""Per-batch synthetic text: caption + CLIP tags + LLM fusion with R1; failures become reasons."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from realsyn.udfs.clip_encoder import open_image
from realsyn.udfs.image_batches import bounded_chunks
from realsyn.udfs.vector_codec import from_bytes
from realsyn.udfs.generation_models import GenSpec, generators_for

OUTPUT_DDL = "image_id string, caption string, tags array<string>, syn_text string, models string, " \
             "status string, reason string"
_ECHO = re.compile(r"^\s*(raw text|caption|tags)\s*:.*$", re.IGNORECASE | re.MULTILINE)


# The taggers built: tags are the mined vocabulary's words nearest the image in CLIP space.
# A preset naming another (the paper's RAM++) fails config validation.
TAGGERS = ("clip",)
PLACEHOLDERS = ("{raw_text}", "{caption}", "{tags}")
_PLACEHOLDER = re.compile(r"\{(raw_text|caption|tags)\}")


def render_prompt(template: str, raw_text: str, caption: str, tags: list[str]) -> str:
    """The conf template with {raw_text}, {caption} and {tags} filled in one pass; every
    other brace is text (a JSON example, `{}`), and a filled value is never read again."""
    values = {"raw_text": raw_text, "caption": caption, "tags": ", ".join(tags)}
    return _PLACEHOLDER.sub(lambda m: values[m[1]], template).strip()


def postprocess(text: str, prompt: str) -> str:
    """Lowercase as in the release; drop prompt echoes, broken bytes and extra whitespace."""
    t = (text or "").replace("\ufffd", "")
    p = prompt.strip()
    if p and t.strip().startswith(p):
        t = t.strip()[len(p):]
    t = _ECHO.sub(" ", t)
    return " ".join(t.split()).lower()


def top_tags(image_vecs: np.ndarray, tag_vecs: np.ndarray, tags: list[str], m: int, floor: float) -> list[list[str]]:
    if m == 0 or len(tags) == 0:
        return [[] for _ in range(len(image_vecs))]
    sims = image_vecs @ tag_vecs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :m]
    return [[tags[j] for j in row if sims[i, j] >= floor] for i, row in enumerate(order)]


COLUMNS = ["image_id", "caption", "tags", "syn_text", "models", "status", "reason"]


def tag_fn(dim: int, dtype: str, tags: list[str], tag_blob: bytes, tag_top_m: int, tag_min_score: float):
    """mapInPandas body: image_id, embedding -> image_id, tags (the image's top_m vocabulary
    words by CLIP similarity, at least tag_min_score). A step of its own, before the units: an
    image's tags are part of what its text is made from, so a new vocabulary remakes only the
    texts of images whose tags it changes."""
    tag_vecs = from_bytes([tag_blob[i * dim * 4:(i + 1) * dim * 4] for i in range(len(tags))], dim)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            vecs = from_bytes(batch["embedding"].tolist(), dim, dtype)
            yield pd.DataFrame({"image_id": batch["image_id"],
                                "tags": top_tags(vecs, tag_vecs, tags, tag_top_m, tag_min_score)})
    return run


def synthesis_rows(template: str):
    """rows(gen, chunk) -> output tuples for one chunk (image_id, r1, tags, bytes); a failing
    chunk is retried row by row so one bad row costs only itself. Every output row carries
    its input's tags. Shared by the Spark body below and by plain callers
    (benchmarks/generation.py), so both do the same work."""

    def one_batch(gen, chunk: pd.DataFrame) -> list[tuple]:
        ids, rows = chunk["image_id"].tolist(), list[tuple]()
        all_tags = [list(t) for t in chunk["tags"]]
        images, ok = [], []
        for i, data in enumerate(chunk["bytes"]):
            try:
                images.append(open_image(data, gen.image_side))
                ok.append(i)
            except Exception:
                rows.append((ids[i], None, all_tags[i], None, None, "rejected", "undecodable"))
        if not ok:
            return rows
        sub = chunk.iloc[ok]
        tag_lists = [all_tags[i] for i in ok]
        captions = gen.caption(images)
        prompts = [render_prompt(template, r1, cap, tl)
                   for r1, cap, tl in zip(sub["r1"].tolist(), captions, tag_lists)]
        outputs = gen.fuse(prompts)
        models = json.dumps({"captioner": gen.captioner_id, "llm": gen.llm_id, "llm_engine": gen.engine,
                             "tagger": TAGGERS[0]})
        for image_id, cap, tl, prompt, out in zip(sub["image_id"], captions, tag_lists, prompts, outputs):
            syn = postprocess(out, prompt)
            rows.append((image_id, cap, tl, syn or None, models, "kept" if syn else "rejected",
                         None if syn else "empty_output"))
        return rows

    def rows(gen, chunk: pd.DataFrame) -> list[tuple]:
        try:
            return one_batch(gen, chunk)
        except Exception:  # isolate the failing row(s) instead of losing the batch
            out = []
            for i in range(len(chunk)):
                try:
                    out += one_batch(gen, chunk.iloc[i:i + 1])
                except Exception as err:
                    out.append((chunk["image_id"].iloc[i], None, list(chunk["tags"].iloc[i]), None, None,
                                "rejected", f"generation_error:{type(err).__name__}"))
            return out
    return rows


def synthesize(spec: GenSpec, template: str, batch_size: int):
    rows = synthesis_rows(template)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        gen = generators_for(spec)
        for batch in batches:
            for first in range(0, len(batch), batch_size):
                part = batch.iloc[first:first + batch_size]
                for start, stop in bounded_chunks(part["bytes"].tolist(), batch_size, gen.image_side):
                    yield pd.DataFrame(rows(gen, part.iloc[start:stop]), columns=COLUMNS)
    return run

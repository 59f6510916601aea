"""The learnable world: deterministic, its texts state its scenes, its eval set held out."""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from realsyn.jobs.corpora.sample_corpus import OBELICS_SCHEMA, bad_documents
from realsyn.jobs.world.corpus import write_world
from realsyn.jobs.world.truth import (ACTION_WORDS, COLOURS, DISTRACTOR_TOPICS, KINDS, SceneSpec, all_concepts,
                                      attributes_of, class_name, describe, distractor_sentence, draw_spec,
                                      spec_concepts, zipf_frequencies)
from realsyn.udfs.sentence_entropy import normalised_entropy
from realsyn.udfs.sentence_split import split

SMALL = {"n_docs": 30, "n_images": 40, "n_eval_per_class": 1, "n_teacher": 20}


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def pixel_hash(path: Path) -> str:
    with Image.open(path) as img:
        return hashlib.sha256(img.convert("RGB").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(str(out), n_teacher=300)   # corpus and eval at their defaults
    return out


@pytest.fixture(scope="module")
def documents(world) -> list[dict]:
    return pq.read_table(world / "obelics" / "part-00000.parquet").to_pylist()


@pytest.fixture(scope="module")
def specs(world) -> dict[str, SceneSpec]:
    return {r["image"]: SceneSpec.from_json(r["spec"]) for r in pq.read_table(world / "truth.parquet").to_pylist()}


@pytest.fixture(scope="module")
def truth_sentences(world) -> list[dict]:
    return pq.read_table(world / "truth_sentences.parquet").to_pylist()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    out = tmp_path / "w"   # one path: the documents hold absolute file:// URLs
    write_world(str(out), seed=3, **SMALL)
    first = file_hashes(out)
    shutil.rmtree(out)
    write_world(str(out), seed=3, **SMALL)
    assert file_hashes(out) == first
    shutil.rmtree(out)
    write_world(str(out), seed=4, **SMALL)
    other = file_hashes(out)
    assert other["obelics/part-00000.parquet"] != first["obelics/part-00000.parquet"]
    assert other["images/w_0000.png"] != first["images/w_0000.png"]


def test_exact_descriptions_state_exactly_the_scenes_concepts():
    rng, freq = random.Random(1), zipf_frequencies(random.Random(2))
    for _ in range(500):
        spec = draw_spec(rng, freq)
        d = describe(spec, rng)
        assert d.swap is None and not d.noisy
        assert attributes_of(d.text) == spec_concepts(spec), d.text
        for g in spec.groups:
            assert g.colour in d.text and g.kind in d.text


def test_noise_swaps_one_attribute_at_about_the_configured_rate():
    rng, freq = random.Random(3), zipf_frequencies(random.Random(4))
    noisy = 0
    for _ in range(2000):
        spec = draw_spec(rng, freq)
        d = describe(spec, rng, noise=0.2)
        if not d.swap:
            assert attributes_of(d.text) == spec_concepts(spec)
            continue
        noisy += 1
        g = spec.groups[d.swap.group]
        assert d.swap.truth == getattr(g, d.swap.attribute) != d.swap.shown
        wrong = (d.swap.shown, g.kind) if d.swap.attribute == "colour" else (g.colour, d.swap.shown)
        assert attributes_of(d.text) == (spec_concepts(spec) - {g.concept}) | {wrong}, d.text
    assert 0.17 < noisy / 2000 < 0.23


def test_concepts_are_long_tailed():
    rng, freq = random.Random(5), zipf_frequencies(random.Random(6))
    counts = Counter(c for _ in range(5000) for c in spec_concepts(draw_spec(rng, freq)))
    assert set(counts) == set(all_concepts())     # rare, but there
    assert max(counts.values()) >= 5 * min(counts.values())
    assert len(COLOURS) >= 8 and len(KINDS) >= 6


def python_regex(java: str) -> re.Pattern:
    """A Java regex of extract_sentences in Python syntax (\\x{HEX} -> \\UXXXXXXXX)."""
    return re.compile(re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", java))


def test_every_emitted_sentence_passes_the_sentence_filters():
    # The filters extract_sentences applies without a model (the CAT parse needs a spaCy
    # pipeline, none ships: the verb vocabulary stands in for its action check).
    from realsyn.jobs.lib.sentence_filters import CONTROL_RE, EMOJI_RE, URL_RE
    rejects = [python_regex(p) for p in (CONTROL_RE, EMOJI_RE, URL_RE)]
    assert rejects[1].search("A dog \U0001F600.") and rejects[2].search("see example.com now")
    rng, freq = random.Random(7), zipf_frequencies(random.Random(8))
    described = [describe(draw_spec(rng, freq), rng, noise=0.2).text for _ in range(400)]
    distractors = [distractor_sentence(rng) for _ in range(200)]
    distractor_verbs = {w for topic in DISTRACTOR_TOPICS.values() for phrase in topic[1] for w in phrase.split()}
    for text, verbs in [(t, ACTION_WORDS) for t in described] + [(t, distractor_verbs) for t in distractors]:
        words = text.split()
        assert 3 <= len(words) <= 81, text
        assert not any(r.search(text) for r in rejects), text
        assert normalised_entropy(text) >= 0.3, text
        assert verbs & set(re.findall(r"[a-z]+", text.lower())), text
        assert split(text) == [text], text
    assert all(not attributes_of(t) for t in distractors)


def test_corpus_has_the_obelics_schema_and_every_bad_input(world, documents):
    table = pq.read_table(world / "obelics" / "part-00000.parquet")
    assert table.schema.equals(OBELICS_SCHEMA)
    wrong = pq.read_table(world / "obelics" / "part-00001-wrong-types.parquet")
    assert str(wrong.schema.field("images").type) == "string"
    expected_bad = bad_documents(random.Random(0), ["a", "b"])
    bad = [d for d in documents if d["general_metadata"] and "bad.example.com" in d["general_metadata"]]
    assert len(bad) == len(expected_bad)
    assert sorted(str(d["metadata"]) for d in bad) == sorted(str(d["metadata"]) for d in expected_bad)
    rows = Counter(json.dumps(d, sort_keys=True) for d in documents)
    assert sorted(rows.values())[-1] == 2 and sum(n == 2 for n in rows.values()) == 1   # one exact duplicate
    files = {p.name for p in (world / "images").iterdir()}
    assert {"corrupt.jpg", "truncated.jpg", "empty.png", "not_an_image.jpg", "bomb.png"} <= files
    linked = {u.rsplit("/", 1)[-1] for d in documents for u in (d["images"] or []) if u and u.startswith("file://")}
    assert files <= linked                         # every file is linked at least once
    hashes = Counter(hashlib.sha256((world / "images" / n).read_bytes()).hexdigest() for n in files)
    assert sum(n > 1 for n in hashes.values()) >= 5                  # exact copies
    assert sum(n.endswith("_near.jpg") for n in files) >= 5           # near duplicates


def test_eval_and_teacher_sets_are_held_out(world):
    corpus = {pixel_hash(p) for p in (world / "images").glob("w_*")}
    classes = json.loads((world / "eval" / "classes.json").read_text())
    folders = {p.name for p in (world / "eval").iterdir() if p.is_dir()}
    assert folders == set(classes) == {class_name(k, c) for c, k in all_concepts()}
    for c, k in all_concepts():
        prompts = classes[class_name(k, c)]
        assert prompts and all(attributes_of(p) == {(c, k)} for p in prompts)
        pngs = sorted((world / "eval" / class_name(k, c)).glob("*.png"))
        assert len(pngs) == 4
        assert not {pixel_hash(p) for p in pngs} & corpus
    pairs = pq.read_table(world / "teacher" / "pairs.parquet").to_pylist()
    assert len(pairs) == 300 and 0.2 < sum(p["noisy"] for p in pairs) / 300 < 0.4
    assert not {pixel_hash(world / "teacher" / p["image_path"]) for p in pairs[:100]} & corpus


def test_text_next_to_an_image_mostly_does_not_describe_it(documents, specs, truth_sentences):
    adjacent = {(t["doc_url"], t["slot"], t["image"]) for t in truth_sentences if t["placement"] == "adjacent"}
    related = total = 0
    for d in documents:
        url = json.loads(d["general_metadata"]).get("url", "")
        if "world.example.com" not in url:
            continue
        for i, image in enumerate(d["images"]):
            name = image.rsplit("/", 1)[-1] if image else None
            if name in specs:
                assert d["texts"][i + 1] is not None   # every corpus picture is followed by text
                total += 1
                related += (url, i + 1, name) in adjacent
    assert total >= 400
    assert 0.22 < related / total < 0.38


def test_truth_sentences_sit_where_recorded_and_state_their_scene(documents, specs, truth_sentences):
    by_url = {json.loads(d["general_metadata"])["url"]: d for d in documents}
    placements = Counter(t["placement"] for t in truth_sentences)
    assert placements["elsewhere"] == 2 * len(specs)            # n_alt=2 per picture
    noisy = 0
    for t in truth_sentences:
        d = by_url[t["doc_url"]]
        if t["placement"] == "alt_text":
            assert json.loads(d["metadata"])[t["slot"]]["alt_text"] == t["sentence"]
            continue
        assert t["sentence"] in split(d["texts"][t["slot"]])   # the splitter gives it back whole
        if t["placement"] == "elsewhere":                      # never in the picture's own document
            assert not any(u and u.endswith("/" + t["image"]) for u in d["images"])
        noisy += t["swap"] is not None
        if t["swap"] is None:
            assert attributes_of(t["sentence"]) == spec_concepts(specs[t["image"]])
    described = placements["elsewhere"] + placements["adjacent"]
    assert 0.10 < noisy / described < 0.20

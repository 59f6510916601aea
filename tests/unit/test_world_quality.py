"""Attribute precision against the world's truth, the neighbouring-text baseline, and the
student's reading of an export's WebDataset shards."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from realsyn.jobs.world.quality import image_key, neighbouring_pairs, neighbouring_text, text_precision

RED_CIRCLE = frozenset({("red", "circle")})


def test_precision_is_the_share_of_named_concepts_the_image_holds():
    assert text_precision("Two red circles sit on the left.", RED_CIRCLE) == 1.0
    assert text_precision("A red circle and a blue square.", RED_CIRCLE) == 0.5
    assert text_precision("A blue circle on a plain background.", RED_CIRCLE) == 0.0
    # Prose naming no concept says nothing true about the picture.
    assert text_precision("Heavy rain soaked the harbour town.", RED_CIRCLE) == 0.0
    assert text_precision(None, RED_CIRCLE) == 0.0


def test_images_match_their_truth_by_file_name_wherever_the_world_was_written():
    assert image_key("file:///tmp/w/images/img_00012.png") == "img_00012.png"
    assert image_key("file:///other/place/images/img%2000012.png") == "img 00012.png"
    assert image_key(None) == ""


def test_the_neighbouring_text_is_the_slot_after_else_the_one_before():
    images = [None, "u1", None, "u2", "u3"]
    texts = ["intro", None, "after u1", None, None]
    got = neighbouring_text(images, texts)
    assert got == {"u1": "after u1", "u2": "after u1", "u3": "after u1"}
    assert neighbouring_text(["u"], [None]) == {"u": ""}
    # The first document an image appears in gives its text.
    rows = [{"images": ["u", None], "texts": [None, "first"]}, {"images": ["u", None], "texts": [None, "second"]}]
    assert neighbouring_pairs(rows) == {"u": "first"}


def write_shard(path, rows, images=None):
    """A WebDataset shard as the export writes it; images: files to store (default 8x8 red)."""
    import webdataset as wds
    with wds.TarWriter(str(path)) as sink:
        for i, (key, text1, meta) in enumerate(rows):
            buf = io.BytesIO()
            (Image.open(images[i]).convert("RGB") if images else Image.new("RGB", (8, 8), (200, 30, 30))).save(buf, "JPEG")
            sink.write({"__key__": key, "jpg": buf.getvalue(), "txt": text1, "json": json.dumps(meta)})


def test_the_student_reads_the_shards_and_draws_only_from_the_chosen_texts(tmp_path):
    from realsyn.jobs.training.student import candidate_texts, parse_sources, read_export
    (tmp_path / "webdataset").mkdir()
    write_shard(tmp_path / "webdataset" / "00000.tar", [
        ("b2", "t1 of b", {"text2": "t2 of b", "text3": None, "syn_text": "syn b", "min_cap": 2}),
        ("a1", "t1 of a", {"text2": None, "text3": None, "syn_text": "", "min_cap": 8}),
        ("c3", "t1 of c", {"text2": None, "text3": None, "syn_text": "syn c", "min_cap": -1}),
    ])
    samples = read_export(str(tmp_path))
    assert [s.key for s in samples] == ["a1", "b2", "c3"] and samples[0].image.size == (8, 8)
    assert [s.key for s in read_export(str(tmp_path), cap=4)] == ["b2"]
    kept, texts = candidate_texts(samples, parse_sources("text2,syn_text"))
    assert [s.key for s in kept] == ["b2", "c3"] and texts == [["t2 of b", "syn b"], ["syn c"]]
    with pytest.raises(ValueError, match="choose from"):
        parse_sources("text1,caption")
    with pytest.raises(FileNotFoundError, match="no WebDataset shards"):
        read_export(str(tmp_path / "nothing"))


def test_weights_roles_narrow_what_loads_from_the_weights_folder(tmp_path):
    from realsyn.jobs.core.config import ConfigError, load_config
    from realsyn.jobs.core.params import weights_folder
    cfg = load_config("local", [], [f"models.weights_dir={tmp_path}"])
    assert weights_folder(cfg, "captioner") == str(tmp_path / "captioner")
    cfg = load_config("local", [], [f"models.weights_dir={tmp_path}", "models.weights_roles=[clip]"])
    assert weights_folder(cfg, "clip") == str(tmp_path / "clip") and weights_folder(cfg, "captioner") == ""
    with pytest.raises(ConfigError, match="weights_roles"):
        weights_folder(load_config("local", [], [f"models.weights_dir={tmp_path}", "models.weights_roles=clip"]),
                       "clip")



def test_weights_folders_hold_regular_files_and_one_clip_file(tmp_path):
    import os
    from realsyn.jobs.core.models import MissingWeights, weights_identity
    from realsyn.udfs.clip_encoder import resolve_weights
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.safetensors").write_bytes(b"weights")
    assert weights_identity({"clip": str(good)})["clip"]
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "w.safetensors")
    with pytest.raises(MissingWeights, match="not a regular file"):
        weights_identity({"clip": str(fifo)})
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "w.safetensors").symlink_to(tmp_path / "nowhere")
    with pytest.raises(MissingWeights, match="dangling"):
        weights_identity({"clip": str(dangling)})
    (good / "b.safetensors").write_bytes(b"other")
    with pytest.raises(ValueError, match="holds 2 .safetensors files"):
        resolve_weights(str(good))

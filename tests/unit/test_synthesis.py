import numpy as np
from PIL import Image

from realsyn.jobs.config import load_config
from realsyn.udfs.generation_models import GenSpec, Generators, generators_for
from realsyn.udfs.synthesis import postprocess, render_prompt, top_tags

SPEC = GenSpec("tiny", "tiny", "", "", 42, 8, 1, 12, 1)


def test_rendered_prompt_for_a_known_input():
    template = load_config().get("generation.prompt_template")
    p = render_prompt(template, "A dog runs on the beach.", "a dog", ["dog", "beach"])
    assert "Raw text: A dog runs on the beach." in p
    assert "Caption: a dog" in p and "Tags: dog, beach" in p
    assert "Do not simply" in p and "add no information" in p
    assert render_prompt("{raw_text} {other}", "x", "c", []) == "x {other}"


def test_postprocess_lowercases_and_strips_echoes():
    prompt = "Merge these.\nRaw text: A B"
    assert postprocess("Merge these.\nRaw text: A B\nA Brown DOG\ufffd runs.", prompt) == "a brown dog runs."
    assert postprocess("Caption: x\n  ", "p") == ""


def test_top_tags_respects_m_and_floor():
    img = np.array([[1.0, 0.0]], dtype=np.float32)
    tags = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    assert top_tags(img, tags, ["a", "b", "c"], 2, 0.5) == [["a", "b"]]
    assert top_tags(img, tags, ["a", "b", "c"], 3, 0.7) == [["a"]]


def test_tiny_models_are_deterministic_with_greedy_decoding():
    gen = generators_for(SPEC)
    imgs = [Image.new("RGB", (50, 40), (10, 20, 200))]
    assert gen.caption(imgs) == Generators(SPEC).caption(imgs)
    assert gen.fuse(["merge the raw text"]) == gen.fuse(["merge the raw text"])


def test_models_load_from_local_save_pretrained_folders(tmp_path):
    gen = generators_for(SPEC)
    gen.cap_model.save_pretrained(tmp_path / "captioner", safe_serialization=True)
    gen.cap_processor.save_pretrained(tmp_path / "captioner")
    gen.cap_tok.save_pretrained(tmp_path / "captioner")
    gen.llm.save_pretrained(tmp_path / "llm", safe_serialization=True)
    gen.llm_tok.save_pretrained(tmp_path / "llm")
    local = Generators(GenSpec("ignored", "ignored", str(tmp_path / "captioner"), str(tmp_path / "llm"), 1, 8, 1, 12, 1))
    assert local.llm_id.endswith("@local:llm")
    assert local.fuse(["merge the raw text"]) == gen.fuse(["merge the raw text"])

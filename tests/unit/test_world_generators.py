"""The world's tokenizer, its fusion examples, and the captioner and fusion LLM trained on a tiny world."""
import random

import pytest

from realsyn.jobs.world.language import FusionNoise, fusion_example, world_tokenizer
from realsyn.jobs.world.quality import text_precision
from realsyn.jobs.world.truth import COLOURS, all_concepts

TEMPLATE = "Merge the raw text and the caption.\nRaw text: {raw_text}\nCaption: {caption}\nTags: {tags}"


@pytest.fixture(scope="module")
def tok():
    return world_tokenizer(0, TEMPLATE)


def test_tokenizer_keeps_world_words_whole_and_round_trips(tok):
    text = "against a striped background, two small purple crosses float on the left."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) <= 16 and tok.decode(ids) == text
    assert tok.decode(tok("ünïcode 123", add_special_tokens=False)["input_ids"]) == "ünïcode 123"   # byte fallback
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|assistant|>")


def test_fusion_examples_target_the_scene_and_are_seeded():
    freq = {c: 1.0 for c in all_concepts()}
    assert fusion_example(random.Random(3), freq, FusionNoise()) == fusion_example(random.Random(3), freq, FusionNoise())
    rng = random.Random(4)
    examples = [fusion_example(rng, freq, FusionNoise(caption_noise=0.5, raw_miss=0.5, tag_keep=1.0))
                for _ in range(200)]
    assert all(text_precision(e["target"], frozenset(e["concepts"])) == 1.0 for e in examples)
    assert all(1 <= len(e["tags"]) <= 5 for e in examples)
    assert all(any(t in COLOURS for t in e["tags"]) for e in examples)   # every right word kept
    sparse = [fusion_example(rng, freq, FusionNoise(tag_keep=0.0)) for _ in range(50)]
    assert all(e["tags"] for e in sparse)   # never empty: wrong words stand in
    noisy = sum(text_precision(e["caption"], frozenset(e["concepts"])) < 1 for e in examples)
    assert 40 < noisy < 160   # about half the captions misname something
    clean = fusion_example(random.Random(5), freq, FusionNoise(0.0, 0.0, 0.0, 1.0, 0))
    assert text_precision(clean["caption"], frozenset(clean["concepts"])) == 1.0
    assert text_precision(clean["raw_text"], frozenset(clean["concepts"])) == 1.0


def test_captioner_and_fusion_train_save_load_in_the_generate_stage_and_are_cached(tmp_path):
    from PIL import Image

    from realsyn.jobs.training.clip_training import TrainSpec
    from realsyn.jobs.world.corpus import write_world
    from realsyn.jobs.training.generators import train_world_captioner, train_world_fusion
    from realsyn.udfs.generation_models import GenSpec, Generators
    world = write_world(str(tmp_path / "world"), n_docs=10, n_images=12, n_eval_per_class=1, n_teacher=48)["out"]
    weights, lines = str(tmp_path / "weights"), []
    spec = TrainSpec(steps=16, batch_size=16, lr=2e-3, weight_decay=0.01, warmup_steps=2)
    cap = train_world_captioner(world, weights, TEMPLATE, spec, lines.append)
    fusion = train_world_fusion(weights, TEMPLATE, spec, 64, log=lines.append)
    assert cap["pairs"] == 48 and cap["last_loss"] < cap["first_loss"] and cap["eval_images"] == 60
    assert fusion["last_loss"] < fusion["first_loss"]
    assert set(fusion["held_out_precision"]) == {"fused", "caption_alone", "raw_text_alone"}
    gen = Generators(GenSpec(captioner="tiny", llm="tiny", captioner_dir=f"{weights}/captioner", llm_dir=f"{weights}/llm", seed=0, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=8, threads=1))
    assert gen.captioner_id.startswith("vision-encoder-decoder@local") and gen.llm_id.startswith("llama@local")
    with Image.open(f"{world}/eval/red_circle/000.png") as im:
        captions = gen.caption([im.convert("RGB")])
    assert len(captions) == 1 and len(gen.fuse([TEMPLATE.format(raw_text="x", caption=captions[0], tags="red")])) == 1
    mtime = (tmp_path / "weights" / "llm" / "model.safetensors").stat().st_mtime_ns
    assert train_world_captioner(world, weights, TEMPLATE, spec, lines.append) == cap
    assert train_world_fusion(weights, TEMPLATE, spec, 64, log=lines.append) == fusion
    assert (tmp_path / "weights" / "llm" / "model.safetensors").stat().st_mtime_ns == mtime
    assert all("unchanged inputs" in line for line in lines[-2:])
    changed = train_world_fusion(weights, TEMPLATE, spec, 65, log=lines.append)
    assert changed["inputs_key"] != fusion["inputs_key"]

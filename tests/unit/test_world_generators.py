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


def test_perplexity_lm_learns_the_grammar_its_band_keeps_prose_and_the_stage_loads_it(tmp_path):
    from realsyn.jobs.training.clip_training import TrainSpec
    from realsyn.jobs.training.perplexity_lm import band_mismatch, score, train_world_ppl_lm, world_prose
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.world.corpus import garbled_sentence
    from realsyn.udfs.perplexity import PplSpec, model_for
    weights, lines = str(tmp_path / "weights"), []
    spec = TrainSpec(steps=60, batch_size=32, lr=3e-3, weight_decay=0.01, warmup_steps=5)
    report = train_world_ppl_lm(weights, TEMPLATE, spec, 1000, log=lines.append, n_held_out=200)
    assert report["last_loss"] < report["first_loss"]
    q = report["held_out_perplexity"]
    assert q["0.01"] <= q["0.5"] <= q["0.99"] < report["band"]["ppl_max"] and report["band"]["ppl_min"] == 0.0
    rng = random.Random(2)
    garbled = [garbled_sentence(rng)[1] for _ in range(20)]
    prose = world_prose(9, 20, "another")
    folder = f"{weights}/ppl_lm"
    assert min(score(folder, garbled, 0)) > max(score(folder, prose, 0))   # the grammar, not the words
    loaded = model_for(PplSpec(model="ppl_lm", local_dir=folder, seed=0, batch_size=16, max_tokens=128, threads=1))
    assert loaded.model_id == "gpt2@local"   # the stage's scorer reads the trained folder, not the tiny preset
    assert train_world_ppl_lm(weights, TEMPLATE, spec, 1000, log=lines.append, n_held_out=200) == report
    assert "unchanged inputs" in lines[-1]
    cfg = load_config(overrides=[f"sentences.ppl_max={report['band']['ppl_max']}", "sentences.ppl_min=0"])
    assert band_mismatch(report, cfg) is None
    assert "sentences.ppl_min/ppl_max" in band_mismatch(report, load_config())   # the defaults' [30, 200]

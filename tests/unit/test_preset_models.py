"""The presets' real model classes, built offline: chat templates, shapes, and wiring on the meta device."""
import pytest

from realsyn.jobs.checks import preset_models as pm
from realsyn.jobs.core.config import load_config
from realsyn.jobs.checks.model_check import sample_images, sample_sentences, wiring

TEXTS = pm.corpus(["a red cube on a table", "two dogs in a park"])


@pytest.mark.parametrize("name", ["Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Meta-Llama-3-8B-Instruct"])
def test_chat_template_renders_as_the_real_models(name):
    from realsyn.udfs.generation_models import render_chat
    _, tok = pm.causal_lm(name, TEXTS, meta=True)
    prompt = "Raw text: a red cube\nCaption: a cube \nTags: cube"
    assert render_chat(tok, [prompt]) == [pm.LLMS[name].expected_render(prompt)]
    assert type(tok).__name__ == {"Qwen/Qwen2.5-0.5B-Instruct": "Qwen2TokenizerFast",
                                  "meta-llama/Meta-Llama-3-8B-Instruct": "PreTrainedTokenizerFast"}[name]


def test_unused_vocabulary_rows_are_zero_and_generation_decodes_words():
    model, tok = pm.causal_lm("Qwen/Qwen2.5-0.5B-Instruct", TEXTS, meta=False, layers=1)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == 151936 and float(emb[len(tok):].abs().sum()) == 0.0
    assert float(emb[:len(tok)].abs().sum()) > 0
    assert model.generation_config.eos_token_id == [tok.convert_tokens_to_ids("<|im_end|>"),
                                                    tok.convert_tokens_to_ids("<|endoftext|>")]


def test_a_model_with_no_known_shape_is_named_in_the_error():
    with pytest.raises(pm.NoOfflineShape, match=r"'org/unknown-7b'.*known: .*Qwen"):
        pm.causal_lm("org/unknown-7b", TEXTS, meta=True)


def test_the_paper_preset_is_wired_on_the_meta_device():
    checks = wiring(load_config("local", overrides=["models.preset=paper"]), TEXTS)
    assert [c.name for c in checks if not c.ok] == [], [c.line() for c in checks]
    lines = "\n".join(c.line() for c in checks)
    assert "EVA02-E-14-plus" in lines and "embedding dim 1024" in lines and "8.030B" in lines
    assert "images resized to 384px" in lines


def test_the_wiring_check_fails_where_the_context_is_too_short():
    cfg = load_config("local", overrides=["models.preset=base", "sentences.ppl_max_tokens=4096"])
    failed = {c.name for c in wiring(cfg, TEXTS) if not c.ok}
    assert failed == {"ppl_lm context"}


def test_sample_rows_hold_a_truncated_image_and_a_one_word_sentence():
    images, sentences = sample_images(8), sample_sentences(50)
    assert len(images) == 8 and len(sentences) == 50 and sentences[-1] == "hello"
    from realsyn.udfs.clip_encoder import open_image
    with pytest.raises(Exception):
        open_image(images[-1])
    assert open_image(images[0]).size[0] > 0

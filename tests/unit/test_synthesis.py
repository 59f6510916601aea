import numpy as np
from PIL import Image

from realsyn.jobs.core.config import load_config
from realsyn.udfs.generation_models import GenSpec, Generators, generators_for
import pandas as pd

from realsyn.udfs.synthesis import postprocess, render_prompt, synthesis_rows, tag_fn, top_tags

SPEC = GenSpec(captioner="tiny", llm="tiny", captioner_dir="", llm_dir="", seed=42, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=12, threads=1)


def test_rendered_prompt_for_a_known_input():
    template = load_config().get("generation.prompt_template")
    p = render_prompt(template, "A dog runs on the beach.", "a dog", ["dog", "beach"])
    assert "Raw text: A dog runs on the beach." in p
    assert "Caption: a dog" in p and "Tags: dog, beach" in p
    assert "Do not simply" in p and "add no information" in p
    assert render_prompt("{raw_text} {other}", "x", "c", []) == "x {other}"
    # braces that are not ours stay text; a value holding a placeholder is not filled again
    got = render_prompt('JSON {"k": 1} {} {0} {raw_text} / {caption}', "{caption}", "c", ["t"])
    assert got == 'JSON {"k": 1} {} {0} {caption} / c'


def test_postprocess_lowercases_and_strips_echoes():
    prompt = "Merge these.\nRaw text: A B"
    assert postprocess("Merge these.\nRaw text: A B\nA Brown DOG\ufffd runs.", prompt) == "a brown dog runs."
    assert postprocess("Caption: x\n  ", "p") == ""


def test_top_tags_respects_m_and_floor():
    img = np.array([[1.0, 0.0]], dtype=np.float32)
    tags = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    assert top_tags(img, tags, ["a", "b", "c"], 2, 0.5) == [["a", "b"]]
    assert top_tags(img, tags, ["a", "b", "c"], 3, 0.7) == [["a"]]


def test_tags_are_a_step_of_their_own_and_every_text_row_carries_its_input_tags():
    tags = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="<f4")
    images = pd.DataFrame({"image_id": ["i1", "i2"],
                           "embedding": [np.array(v, "<f4").tobytes() for v in ([1, 0], [0.6, 0.8])]})
    out = pd.concat(tag_fn(2, "float32", ["a", "b"], tags.tobytes(), 1, 0.5)(iter([images])))
    assert [list(t) for t in out["tags"]] == [["a"], ["b"]]
    chunk = pd.DataFrame({"image_id": ["i1"], "r1": ["a red cube."], "tags": [np.array(["a"])],
                          "bytes": [b"not an image"]})
    assert synthesis_rows("{raw_text}")(None, chunk) == [("i1", None, ["a"], None, None, "rejected", "undecodable")]


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
    local = Generators(GenSpec(captioner="ignored", llm="ignored", captioner_dir=str(tmp_path / "captioner"), llm_dir=str(tmp_path / "llm"), seed=1, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=12, threads=1))
    assert local.llm_id.endswith("@local:llm")
    assert local.fuse(["merge the raw text"]) == gen.fuse(["merge the raw text"])


def test_engine_selection():
    import pytest

    from realsyn.udfs.generation_models import EngineError, choose_engine
    # auto: vLLM only where it is installed, a GPU is visible and the LLM can be loaded by name or folder
    assert choose_engine("auto", "Qwen/Qwen2.5-0.5B-Instruct", "", vllm_ok=True, cuda=True) == "vllm"
    assert choose_engine("auto", "tiny", "/models/llm", vllm_ok=True, cuda=True) == "vllm"
    assert choose_engine("auto", "tiny", "", vllm_ok=True, cuda=True) == "transformers"
    assert choose_engine("auto", "Qwen/Qwen2.5-0.5B-Instruct", "", vllm_ok=False, cuda=True) == "transformers"
    assert choose_engine("auto", "Qwen/Qwen2.5-0.5B-Instruct", "", vllm_ok=True, cuda=False) == "transformers"
    assert choose_engine("transformers", "x", "", vllm_ok=True, cuda=True) == "transformers"
    assert choose_engine("vllm", "x", "", vllm_ok=True, cuda=True) == "vllm"
    with pytest.raises(EngineError, match="not installed"):
        choose_engine("vllm", "x", "", vllm_ok=False, cuda=True)
    with pytest.raises(EngineError, match="tiny LLM"):
        choose_engine("vllm", "tiny", "", vllm_ok=True, cuda=True)
    with pytest.raises(EngineError, match="CUDA"):
        choose_engine("vllm", "x", "", vllm_ok=True, cuda=False)
    with pytest.raises(EngineError, match="not one of"):
        choose_engine("tgi", "x", "", vllm_ok=True, cuda=True)


def test_vllm_sampling_parameters_mirror_greedy_transformers():
    import pytest
    from transformers import GenerationConfig

    from realsyn.udfs.generation_models import EngineError, vllm_sampling_kwargs
    # An instruct model's config samples by default; the transformers path decodes greedily
    # (do_sample=False), so only the limit, repetition penalty and stop ids carry over.
    cfg = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05,
                           eos_token_id=[151645, 151643]).to_dict()
    assert vllm_sampling_kwargs(96, cfg) == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 96,
                                             "repetition_penalty": 1.05, "skip_special_tokens": True,
                                             "stop_token_ids": [151645, 151643]}
    plain = vllm_sampling_kwargs(12, GenerationConfig(eos_token_id=2).to_dict())
    assert plain["repetition_penalty"] == 1.0 and plain["stop_token_ids"] == [2] and plain["max_tokens"] == 12
    assert "stop_token_ids" not in vllm_sampling_kwargs(5, {})
    with pytest.raises(EngineError, match="no_repeat_ngram_size"):
        vllm_sampling_kwargs(5, {"no_repeat_ngram_size": 3})


def test_engine_vllm_without_vllm_is_a_clear_error(tmp_path):
    import pytest

    from realsyn.jobs.generate import GenerateParams, gen_spec
    from realsyn.jobs.core.stage import InputError
    from realsyn.udfs.generation_models import EngineError, vllm_importable
    if vllm_importable():
        pytest.skip("vllm is installed here")
    cfg = load_config("local", overrides=[f"run.work_dir={tmp_path}", "generation.engine=vllm"])
    with pytest.raises(InputError, match="vllm package is not installed"):
        gen_spec(GenerateParams.from_config(cfg))
    spec = gen_spec(GenerateParams.from_config(load_config("local", overrides=[f"run.work_dir={tmp_path}"])))
    assert spec.engine == "auto"
    assert Generators(spec).engine == "transformers"      # auto falls back here (no vllm, tiny LLM)
    with pytest.raises(EngineError, match="not installed"):
        Generators(GenSpec(captioner="tiny", llm="tiny", captioner_dir="", llm_dir="", seed=42, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=12, threads=1, engine="vllm"))


def test_vllm_engine_arguments_load_what_transformers_loads():
    from realsyn.udfs.generation_models import vllm_engine_kwargs
    spec = GenSpec(captioner="Qwen/Qwen2.5-0.5B-Instruct", llm="Qwen/Qwen2.5-0.5B-Instruct", captioner_dir="", llm_dir="/models/llm", seed=7, caption_max_new_tokens=30, caption_num_beams=1, llm_max_new_tokens=96, threads=2,
                   engine="vllm", vllm_gpu_memory=0.4)
    assert vllm_engine_kwargs("/models/llm", spec) == {
        "model": "/models/llm", "tokenizer": "/models/llm", "seed": 7, "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.4, "trust_remote_code": False}


def test_fusion_counts_the_answer_tokens_it_made():
    gen = Generators(GenSpec(captioner="tiny", llm="tiny", captioner_dir="", llm_dir="", seed=42, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=6, threads=1, engine="transformers"))
    outputs = gen.fuse(["merge the raw text", "a much longer prompt about the raw text and the caption"])
    assert len(outputs) == 2
    assert 0 < gen.fusion.generated_tokens <= 2 * 6

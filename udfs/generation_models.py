"""The captioner and the fusion LLM (transformers), loaded once per Python worker.

`tiny` builds both from config with a fixed seed and a small byte-level BPE tokenizer
trained in memory (no download); other presets name hub models; any preset can load a
local folder saved with save_pretrained (safetensors only).

Fusion engines (`generation.engine`): `transformers` (always available) or `vllm`
(GPU clusters where vllm is installed), behind one interface: render(prompts) and
fuse(prompts). Both render the same chat template with the same tokenizer and hand
the engine token ids, with greedy decoding mapped parameter by parameter
(vllm_sampling_kwargs). `auto` picks vLLM only where it can run (choose_engine).
The vLLM path is not exercised by this project's tests (no GPU, vllm not installed).
"""
from __future__ import annotations

import functools
import os
from typing import Any
from dataclasses import dataclass

from realsyn.udfs import declared as d
from realsyn.udfs.locations import Location

TINY_CORPUS = (
    "a photo of a person dog cat car street house tree field river city people man woman child "
    "walking riding standing sitting playing holding near under on with in the of and at by "
    "merge the raw text and the caption into one description of the image using the tags "
    "raw text caption tags description image sunset morning night red blue green yellow black white"
)
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@dataclass(frozen=True, kw_only=True)
class GenSpec:
    """The captioner and the fusion LLM, and how they generate."""
    SECTION = "generation"
    captioner: str = d.preset("captioner")        # "tiny" or a model name
    llm: str = d.preset("llm")
    captioner_dir: Location = d.weights("captioner")   # local save_pretrained folders ("" = none), identified by content
    llm_dir: Location = d.weights("llm")
    seed: int = d.setting("run.seed")
    caption_max_new_tokens: int
    caption_num_beams: int
    llm_max_new_tokens: int
    threads: int = d.setting("models.torch_threads")
    engine: str = "transformers"      # auto | transformers | vllm (resolved per worker)
    vllm_gpu_memory: float = 0.8      # vLLM's gpu_memory_utilization (its share of the GPU)


def tiny_tokenizer():
    """A fresh copy each call: callers set padding_side, which must not leak between models."""
    import copy
    return copy.deepcopy(_tiny_tokenizer())


@functools.lru_cache(maxsize=1)
def _tiny_tokenizer():
    return bpe_tokenizer([TINY_CORPUS] * 4, vocab_size=400, min_frequency=1)


SPECIALS = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]


def bpe_tokenizer(texts: list[str], vocab_size: int, min_frequency: int, specials: tuple[str, ...] = tuple(SPECIALS),
                  roles: dict[str, str] | None = None, chat_template: str | None = CHAT_TEMPLATE, cls=None):
    """A byte-level BPE trained in memory on `texts` (any text still encodes), with its special
    tokens, their roles (pad, bos, eos, ...) and the chat template the generate stage renders
    prompts with. `cls`: the tokenizer class a real model ships with (default the generic one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(specials),
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    roles = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"} if roles is None else roles
    tok = (cls or PreTrainedTokenizerFast)(tokenizer_object=bpe, **roles)
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def tiny_captioner(seed: int):
    import torch
    from transformers import (GPT2Config, GPT2LMHeadModel, ViTConfig, ViTImageProcessor, ViTModel,
                              VisionEncoderDecoderModel)
    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    enc = ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=64))
    dec = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                     add_cross_attention=True, bos_token_id=tok.bos_token_id,
                                     eos_token_id=tok.eos_token_id))
    model = VisionEncoderDecoderModel(encoder=enc, decoder=dec)
    model.config.decoder_start_token_id = tok.bos_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.decoder_start_token_id = tok.bos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    return model, processor, tok


def tiny_llm(seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def load_captioner(name: str, local_dir: str, seed: int):
    from transformers import AutoModelForVision2Seq, AutoProcessor, AutoTokenizer
    if local_dir:
        model = AutoModelForVision2Seq.from_pretrained(local_dir, use_safetensors=True)
        processor = AutoProcessor.from_pretrained(local_dir)
        if not hasattr(processor, "tokenizer") and hasattr(processor, "decode"):
            # A VisionEncoderDecoder folder holds an image processor and a tokenizer but no
            # processor joining them, and AutoProcessor then answers with the tokenizer.
            from transformers import AutoImageProcessor
            processor = AutoImageProcessor.from_pretrained(local_dir)
        tok = getattr(processor, "tokenizer", None) or AutoTokenizer.from_pretrained(local_dir)
        return model, processor, tok, f"{model.config.model_type}@local:{os.path.basename(local_dir.rstrip('/'))}"
    if name == "tiny":
        model, processor, tok = tiny_captioner(seed)
        return model, processor, tok, f"tiny-captioner@seed:{seed}"
    processor = AutoProcessor.from_pretrained(name)
    model = AutoModelForVision2Seq.from_pretrained(name, use_safetensors=True)
    return model, processor, processor.tokenizer, name


def load_llm(name: str, local_dir: str, seed: int):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if local_dir:
        model = AutoModelForCausalLM.from_pretrained(local_dir, use_safetensors=True)
        return model, AutoTokenizer.from_pretrained(local_dir), f"{model.config.model_type}@local:{os.path.basename(local_dir.rstrip('/'))}"
    if name == "tiny":
        model, tok = tiny_llm(seed)
        return model, tok, f"tiny-llm@seed:{seed}"
    return (AutoModelForCausalLM.from_pretrained(name, use_safetensors=True),
            AutoTokenizer.from_pretrained(name), name)


ENGINES = ("auto", "transformers", "vllm")


class EngineError(RuntimeError):
    """The configured fusion engine cannot run here; the message says why and what to set."""


def vllm_importable() -> bool:
    import importlib.util
    return importlib.util.find_spec("vllm") is not None


def choose_engine(requested: str, llm: str, llm_dir: str, vllm_ok: bool, cuda: bool) -> str:
    """The fusion engine to use. `auto`: vLLM where it is installed, a GPU is visible and
    the LLM is a named or saved model (the tiny LLM only exists in memory); transformers
    otherwise. `vllm` asked for where it cannot run is an error, never a silent fallback."""
    if requested not in ENGINES:
        raise EngineError(f"generation.engine: {requested!r} is not one of {', '.join(ENGINES)}")
    loadable = bool(llm_dir) or llm != "tiny"
    if requested == "auto":
        return "vllm" if vllm_ok and cuda and loadable else "transformers"
    if requested == "vllm":
        if not vllm_ok:
            raise EngineError("generation.engine: vllm, but the vllm package is not installed on this "
                              "Python; install it (GPU clusters) or set generation.engine to transformers or auto")
        if not loadable:
            raise EngineError("generation.engine: vllm cannot load the tiny LLM (built in memory); "
                              "use a named model, models.weights_dir, or generation.engine: transformers")
        if not cuda:
            raise EngineError("generation.engine: vllm needs a CUDA GPU, and none is visible to this worker")
    return requested


def vllm_sampling_kwargs(max_new_tokens: int, generation_config: dict) -> dict:
    """SamplingParams keywords that decode as the transformers path does: greedy
    (do_sample=False, so temperature/top_p/top_k do not apply), the same token limit,
    the model's repetition penalty and end-of-sequence ids, special tokens dropped.
    Settings with no vLLM equivalent are refused rather than silently ignored."""
    unsupported = {k: generation_config[k] for k in ("no_repeat_ngram_size", "num_beams")
                   if generation_config.get(k) not in (None, 0, 1)}
    if unsupported:
        raise EngineError(f"generation settings with no vLLM equivalent in greedy mode: {unsupported}")
    eos = generation_config.get("eos_token_id")
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    kwargs: dict[str, Any] = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": int(max_new_tokens),
              "repetition_penalty": float(generation_config.get("repetition_penalty") or 1.0),
              "skip_special_tokens": True}
    if eos:
        kwargs["stop_token_ids"] = eos
    return kwargs


def vllm_engine_kwargs(source: str, spec: GenSpec) -> dict:
    """vLLM engine arguments: the same weights and tokenizer as the transformers path, one GPU
    per task (Spark assigns it), the configured share of its memory, no code from the model
    folder (the stages load safetensors only)."""
    return {"model": source, "tokenizer": source, "seed": spec.seed, "tensor_parallel_size": 1,
            "gpu_memory_utilization": spec.vllm_gpu_memory, "trust_remote_code": False}


class TransformersFusion:
    """Batched greedy generate() with left padding."""

    name = "transformers"

    def __init__(self, model, tok, device: str, max_new_tokens: int):
        import torch
        self.torch, self.model, self.tok, self.device, self.max_new_tokens = torch, model, tok, device, max_new_tokens
        self.generated_tokens = 0   # answer tokens made so far (padding after an early end excluded)

    def fuse(self, rendered: list[str]) -> list[str]:
        torch = self.torch
        enc = self.tok(rendered, return_tensors="pt", padding=True,
                       add_special_tokens=False, return_token_type_ids=False).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False)
        answers = out[:, enc["input_ids"].shape[1]:]
        self.generated_tokens += int((answers != self.tok.pad_token_id).sum())
        return self.tok.batch_decode(answers, skip_special_tokens=True)


class VLLMFusion:
    """vLLM offline engine on the worker's GPU, fed the same token ids as transformers."""

    name = "vllm"

    def __init__(self, source: str, tok, spec: GenSpec, generation_config: dict):
        from vllm import LLM, SamplingParams   # lazy: only GPU clusters have it
        self.tok = tok
        self.engine = LLM(**vllm_engine_kwargs(source, spec))
        self.params = SamplingParams(**vllm_sampling_kwargs(spec.llm_max_new_tokens, generation_config))

    def fuse(self, rendered: list[str]) -> list[str]:
        ids = [self.tok(r, add_special_tokens=False)["input_ids"] for r in rendered]
        outs = self.engine.generate([{"prompt_token_ids": i} for i in ids], self.params, use_tqdm=False)
        return [o.outputs[0].text if o.outputs else "" for o in outs]


def input_side(processor) -> int | None:
    """The longest side the captioner's image processor resizes to (None when it says not)."""
    size = getattr(getattr(processor, "image_processor", processor), "size", None)
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        sides = [v for k, v in size.items() if k in ("height", "width", "shortest_edge", "longest_edge")]
        return max(sides) if sides else None
    return None


class Generators:
    """Captioner + LLM on the task's device, greedy (or beam) decoding, batched."""

    def __init__(self, spec: GenSpec):
        import torch
        from realsyn.udfs.clip_encoder import pick_device
        torch.set_num_threads(spec.threads)
        self.torch, self.spec = torch, spec
        self.device = pick_device()
        self.engine = choose_engine(spec.engine, spec.llm, spec.llm_dir, vllm_importable(),
                                    self.device.startswith("cuda"))   # before any model loads
        self.cap_model, self.cap_processor, self.cap_tok, self.captioner_id = load_captioner(
            spec.captioner, spec.captioner_dir, spec.seed)
        self.cap_model = self.cap_model.to(self.device).eval()
        self.image_side = input_side(self.cap_processor)   # images are reduced towards it as opened
        if self.engine == "vllm":
            from transformers import AutoConfig, AutoTokenizer, GenerationConfig
            source = spec.llm_dir or spec.llm
            self.llm_tok = AutoTokenizer.from_pretrained(source)
            self.llm = None   # the weights live inside the vLLM engine
            self.llm_id = (f"{AutoConfig.from_pretrained(source).model_type}@local:"
                           f"{os.path.basename(spec.llm_dir.rstrip('/'))}" if spec.llm_dir else spec.llm)
            try:
                gen_cfg = GenerationConfig.from_pretrained(source).to_dict()
            except OSError:   # a model without generation_config.json: transformers' defaults
                gen_cfg = GenerationConfig().to_dict()
            self.fusion: VLLMFusion | TransformersFusion = VLLMFusion(source, self.llm_tok, spec, gen_cfg)
        else:
            self.llm, self.llm_tok, self.llm_id = load_llm(spec.llm, spec.llm_dir, spec.seed)
            self.llm_tok.padding_side = "left"
            if self.llm_tok.pad_token is None:
                self.llm_tok.pad_token = self.llm_tok.eos_token
            self.llm = self.llm.to(self.device).eval()
            self.fusion = TransformersFusion(self.llm, self.llm_tok, self.device, spec.llm_max_new_tokens)

    def caption(self, images: list) -> list[str]:
        torch = self.torch
        pixels = self.cap_processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            out = self.cap_model.generate(pixel_values=pixels, max_new_tokens=self.spec.caption_max_new_tokens,
                                          num_beams=self.spec.caption_num_beams, do_sample=False)
        return [t.strip() for t in self.cap_tok.batch_decode(out, skip_special_tokens=True)]

    def render(self, prompts: list[str]) -> list[str]:
        return render_chat(self.llm_tok, prompts)

    def fuse(self, prompts: list[str]) -> list[str]:
        return self.fusion.fuse(self.render(prompts))


def render_chat(tok, prompts: list[str]) -> list[str]:
    """Each prompt as one user turn through the LLM's own chat template, ready for the answer."""
    return [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts]


_GENERATORS: dict[GenSpec, Generators] = {}


def generators_for(spec: GenSpec) -> Generators:
    if spec not in _GENERATORS:
        _GENERATORS[spec] = Generators(spec)
    return _GENERATORS[spec]

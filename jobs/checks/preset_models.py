"""The presets' real model classes, built offline at random init (no hub, no weights).

What `models.preset: base` or `paper` loads on a user's cluster, with the same classes,
published configurations, processors, tokenizer classes and chat templates: open_clip
architectures by name, BLIP captioners, Qwen2 / Llama causal LMs, GPT-2. Only the
tokenizers' vocabularies are built here from local text (the real ones ship with the
weights); every shape, dimension and processor the stages wire up is the published one.
`write_weights` saves a preset where `models.weights_dir/<role>` loads it, so the stages'
own loaders read it back. On the meta device nothing is allocated (the paper preset's CLIP
image tower alone has 4.4B parameters).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from realsyn.udfs.generation_models import TINY_CORPUS, bpe_tokenizer

# ChatML as Qwen2.5's template renders it for turns without tools: a default system turn
# when the conversation has none, each turn as <|im_start|>role\ncontent<|im_end|>\n.
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + QWEN_SYSTEM + "<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Llama 3 Instruct's turns: a header per role, the content stripped, <|eot_id|> after each.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def qwen_render(prompt: str) -> str:
    """What Qwen2.5-Instruct's own template renders for one user turn (the check compares)."""
    return (f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
            "<|im_start|>assistant\n")


def llama3_render(prompt: str) -> str:
    return (f"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt.strip()}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n")


@dataclass(frozen=True)
class CausalShape:
    """A published causal LM: its transformers config, tokenizer kind and special tokens."""
    family: str                       # qwen2 | llama | gpt2
    config: dict[str, Any]
    params: float                     # published parameter count, checked against the build
    specials: tuple[str, ...] = ()
    roles: dict[str, str | None] = field(default_factory=dict)
    template: str | None = None
    expected_render: Any = None       # prompt -> the real template's rendering
    generation: dict[str, Any] = field(default_factory=dict)   # generation_config.json, by token name


LLMS: dict[str, CausalShape] = {
    "Qwen/Qwen2.5-0.5B-Instruct": CausalShape(
        "qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      use_sliding_window=False, sliding_window=32768, max_window_layers=21),
        0.494e9, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        {"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>", "unk_token": None, "bos_token": None},
        QWEN_TEMPLATE, qwen_render,
        {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
         "eos_token_id": ["<|im_end|>", "<|endoftext|>"], "pad_token_id": "<|endoftext|>",
         "bos_token_id": "<|endoftext|>"}),
    "meta-llama/Meta-Llama-3-8B-Instruct": CausalShape(
        "llama", dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                      rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
        8.03e9, ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
        LLAMA3_TEMPLATE, llama3_render,
        {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "eos_token_id": ["<|end_of_text|>", "<|eot_id|>"],
         "bos_token_id": "<|begin_of_text|>"}),
    "gpt2": CausalShape("gpt2", {}, 0.124e9, ("<|endoftext|>",),
                        {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}),
    "gpt2-large": CausalShape("gpt2", dict(n_embd=1280, n_layer=36, n_head=20), 0.774e9, ("<|endoftext|>",),
                              {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                               "unk_token": "<|endoftext|>"}),
}

# BLIP captioning: BlipConfig's defaults are the base model; large widens the image tower
# (and the text decoder's cross-attention reads its width). Counts are per tensor: the hub's
# 247M / 470M count the LM head tied to the word embeddings (30,524 x 768) twice.
CAPTIONERS: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {
    "Salesforce/blip-image-captioning-base": ({}, {}, 0.224e9),
    "Salesforce/blip-image-captioning-large": (dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                                    intermediate_size=4096), dict(encoder_hidden_size=1024), 0.446e9),
}
WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]")


class NoOfflineShape(ValueError):
    """The preset names a model whose published shape this module does not know."""


def _known(table: dict, name: str, role: str):
    if name not in table:
        raise NoOfflineShape(f"models.presets.*.{role} = {name!r}: no offline shape is known for it "
                             f"(known: {', '.join(sorted(table))}); run check-models without --random-init "
                             "where its weights can be loaded")
    return table[name]


def _device(meta: bool):
    import torch
    return torch.device("meta") if meta else contextlib.nullcontext()


def clip_model(arch: str, meta: bool, seed: int = 0):
    """An open_clip architecture by name, random init (no pretrained tag: nothing downloads)."""
    import open_clip
    import torch
    torch.manual_seed(seed)
    if meta:
        with torch.device("meta"):
            return open_clip.create_model(arch, pretrained=None, device="meta")
    return open_clip.create_model(arch, pretrained=None)


def wordpiece_tokenizer(texts: list[str], folder: str):
    """BERT's WordPiece (lower case) trained on local text, BLIP's [DEC] as its bos token."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(texts, vocab_size=2000, min_frequency=1, special_tokens=list(WORDPIECE_SPECIALS),
                           show_progress=False)
    os.makedirs(folder, exist_ok=True)
    wp.save_model(folder)
    return BertTokenizerFast(os.path.join(folder, "vocab.txt"), do_lower_case=True, bos_token="[DEC]",
                             additional_special_tokens=["[ENC]"])


def blip_captioner(name: str, texts: list[str], folder: str, meta: bool, seed: int = 0, layers: int | None = None):
    """(model, processor) of a BLIP captioning model: real classes, published shape (`layers`
    fewer blocks in both towers where memory or a CPU self-check demands it)."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor
    vision, text, _ = _known(CAPTIONERS, name, "captioner")
    tok = wordpiece_tokenizer(texts, folder)
    ids = {"bos_token_id": tok.bos_token_id, "pad_token_id": tok.pad_token_id, "sep_token_id": tok.sep_token_id,
           "eos_token_id": tok.sep_token_id}
    depth = {} if layers is None else {"num_hidden_layers": layers}
    config = BlipConfig(vision_config={**vision, **depth}, text_config={**text, **ids, **depth})
    torch.manual_seed(seed)
    with _device(meta):
        model = BlipForConditionalGeneration(config)
    zero_unused_rows(model.text_decoder, len(tok))
    return model, BlipProcessor(image_processor=BlipImageProcessor(), tokenizer=tok)


def causal_lm(name: str, texts: list[str], meta: bool, seed: int = 0, layers: int | None = None):
    """(model, tokenizer) of a published causal LM at random init, with a byte-level BPE
    trained on local text in the model's tokenizer class and its chat template (`layers`:
    fewer blocks where memory or a CPU self-check demands it)."""
    import torch
    from transformers import (GenerationConfig, GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast, LlamaConfig,
                              LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
                              Qwen2TokenizerFast)
    shape: CausalShape = _known(LLMS, name, "llm")
    classes = {"qwen2": (Qwen2Config, Qwen2ForCausalLM, Qwen2TokenizerFast),
               "llama": (LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast),
               "gpt2": (GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast)}
    config_cls, model_cls, tok_cls = classes[shape.family]
    tok = bpe_tokenizer(texts, vocab_size=4000, min_frequency=1, specials=shape.specials,
                        roles={k: v for k, v in shape.roles.items() if v is not None}, chat_template=shape.template,
                        cls=tok_cls)
    token = tok.convert_tokens_to_ids
    special_ids = {k: token(v) for k, v in shape.roles.items() if v is not None}
    depth = {} if layers is None else {"n_layer" if shape.family == "gpt2" else "num_hidden_layers": layers}
    if shape.family == "qwen2" and layers is not None:
        depth["max_window_layers"] = layers
    config = config_cls(**{**shape.config, **depth}, **{k.replace("_token", "_token_id"): v for k, v in
                                                         special_ids.items() if k in ("bos_token", "eos_token", "pad_token")})
    torch.manual_seed(seed)
    with _device(meta):
        model = model_cls(config)
    zero_unused_rows(model, len(tok))
    if shape.generation:
        model.generation_config = GenerationConfig(**{
            k: ([token(t) for t in v] if isinstance(v, list) else token(v) if k.endswith("_token_id") else v)
            for k, v in shape.generation.items()})
    return model, tok


def zero_unused_rows(model, used: int) -> None:
    """Zero the embedding and output rows past the tokenizer's vocabulary, as rows no token
    ever trained are: the published vocabulary is larger than the one built here, and a
    random row there would win greedy decoding with an id that decodes to nothing."""
    import torch
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            if layer is not None and layer.weight.device.type != "meta":
                layer.weight[used:] = 0


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def corpus(extra: list[str]) -> list[str]:
    """Local text the vocabularies are built from: the tiny models' corpus and the caller's."""
    return [TINY_CORPUS] * 4 + list(extra)


def write_role(role: str, name: str, folder: str, texts: list[str], seed: int = 0,
               layers: int | None = None) -> str:
    """Save one role's model at random init where models.weights_dir/<role> loads it: clip as
    one .safetensors file, the others as save_pretrained folders (safetensors)."""
    out = os.path.join(folder, role)
    os.makedirs(out, exist_ok=True)
    if role == "clip":
        from safetensors.torch import save_file
        clip = clip_model(name, meta=False, seed=seed)
        save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, os.path.join(out, "model.safetensors"))
    elif role == "captioner":
        model, processor = blip_captioner(name, texts, out, meta=False, seed=seed, layers=layers)
        model.save_pretrained(out, safe_serialization=True)
        processor.save_pretrained(out)
    else:
        lm, tok = causal_lm(name, texts, meta=False, seed=seed, layers=layers)
        lm.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
    return out


def write_weights(preset: dict[str, str], folder: str, texts: list[str], seed: int = 0) -> dict[str, str]:
    """A preset's four models at random init, in the layout models.weights_dir loads."""
    return {role: write_role(role, preset[role], folder, texts, seed) for role in ("clip", "captioner", "llm", "ppl_lm")}

"""Train the captioner and the fusion LLM of the generate stage on a world, on the CPU.

Both are transformers models (a ViT + GPT-2 VisionEncoderDecoder, a Llama causal LM), built
from config a few times larger than the tiny preset's, with the world's tokenizer
(jobs/world/language.py), and saved with save_pretrained (safetensors) where the generate
stage loads them: `<weights_dir>/captioner` and `<weights_dir>/llm`, the path real weights
take. The captioner learns from the world's noisy alt-text split (the teacher's pairs); the
fusion LLM from fusion examples drawn from the world's grammar, with the loss on the answer
only. Each is scored on data it never saw: the captioner on the held-out eval images (does
its caption name the image's concept?), the LLM on fresh fusion examples (the attribute
precision of its output).
"""
from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, Sequence

from realsyn.jobs.training.clip_training import TrainSpec, learning_rate
from realsyn.jobs.world.language import FusionNoise, fusion_example
from realsyn.jobs.world.quality import text_precision
from realsyn.jobs.world.truth import attributes_of


def fit(model, loss_at: Callable[[int], Any], spec: TrainSpec, log: Callable[[str], None],
        name: str) -> list[float]:
    """AdamW on the teacher's schedule (linear warm-up, cosine decay to zero);
    `loss_at(step)` is the step's loss tensor."""
    import torch
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    model.train()
    losses, started = [], time.time()
    for step in range(spec.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(spec, step)
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == spec.steps - 1:
            log(f"{name}: step {step + 1}/{spec.steps} loss {losses[-1]:.3f} ({time.time() - started:.0f}s)")
    model.eval()
    return losses


def build_captioner(tok, image_size: int = 64):
    from transformers import (GPT2Config, GPT2LMHeadModel, ViTConfig, ViTImageProcessor, ViTModel,
                              VisionEncoderDecoderModel)
    enc = ViTModel(ViTConfig(image_size=image_size, patch_size=8, hidden_size=128, num_hidden_layers=3,
                             num_attention_heads=4, intermediate_size=256))
    dec = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=128, n_layer=2, n_head=4, n_positions=64,
                                     add_cross_attention=True, bos_token_id=tok.bos_token_id,
                                     eos_token_id=tok.eos_token_id))
    model = VisionEncoderDecoderModel(encoder=enc, decoder=dec)
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id = tok.bos_token_id
        cfg.pad_token_id = tok.pad_token_id
        cfg.eos_token_id = tok.eos_token_id
    return model, ViTImageProcessor(size={"height": image_size, "width": image_size})


def build_fusion_llm(tok):
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                         max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model


def train_captioner(images: Sequence, texts: Sequence[str], tok, spec: TrainSpec,
                    log: Callable[[str], None] = print):
    """(model, processor, losses): the captioner trained on (image, lowercased text) pairs."""
    import torch
    torch.manual_seed(spec.seed)
    model, processor = build_captioner(tok)
    pixels = torch.cat([processor(images=list(images[i:i + 256]), return_tensors="pt")["pixel_values"]
                        for i in range(0, len(images), 256)])
    seqs = [tok(t.lower(), add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    labels = torch.full((len(seqs), max(map(len, seqs))), -100)   # padding carries no loss
    for row, s in enumerate(seqs):
        labels[row, :len(s)] = torch.tensor(s)
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(len(texts), generator=gen)

    def loss_at(step: int):
        idx = order[(torch.arange(spec.batch_size) + step * spec.batch_size) % len(texts)]
        target = labels[idx]
        start = torch.full((len(idx), 1), tok.bos_token_id)
        inputs = torch.cat([start, target[:, :-1].masked_fill(target[:, :-1] == -100, tok.pad_token_id)], 1)
        # The loss is taken here: VisionEncoderDecoderModel's own shifts the labels a second time.
        logits = model(pixel_values=pixels[idx], decoder_input_ids=inputs).logits
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)
    losses = fit(model, loss_at, spec, log, "captioner")
    return model, processor, losses


def caption_images(model, processor, tok, images: Sequence, max_new_tokens: int = 30) -> list[str]:
    import torch
    out = []
    for i in range(0, len(images), 64):
        pixels = processor(images=list(images[i:i + 64]), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            ids = model.generate(pixel_values=pixels, max_new_tokens=max_new_tokens, do_sample=False)
        out += [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
    return out


def render_example(tok, template: str, example: dict) -> str:
    from realsyn.udfs.synthesis import render_prompt
    prompt = render_prompt(template, example["raw_text"], example["caption"], example["tags"])
    return tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def fusion_examples(seed: int, freq: dict, n: int, noise: FusionNoise, stream: str) -> list[dict]:
    rng = random.Random(f"{seed}:fusion:{stream}")
    return [fusion_example(rng, freq, noise) for _ in range(n)]


def train_fusion(examples: Sequence[dict], template: str, tok, spec: TrainSpec,
                 log: Callable[[str], None] = print):
    """(model, losses): the LLM trained to answer each rendered prompt with its target."""
    import torch
    torch.manual_seed(spec.seed)
    model = build_fusion_llm(tok)
    prompts = [tok(render_example(tok, template, e), add_special_tokens=False)["input_ids"] for e in examples]
    answers = [tok(e["target"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for e in examples]
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(len(examples), generator=gen).tolist()

    def loss_at(step: int):
        idx = [order[(step * spec.batch_size + j) % len(order)] for j in range(spec.batch_size)]
        seqs = [prompts[i] + answers[i] for i in idx]
        width = max(map(len, seqs))
        ids = torch.full((len(idx), width), tok.pad_token_id)
        labels = torch.full((len(idx), width), -100)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            s = seqs[row]
            ids[row, :len(s)] = torch.tensor(s)
            mask[row, :len(s)] = 1
            labels[row, len(prompts[i]):len(s)] = torch.tensor(answers[i])   # loss on the answer only
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss   # LlamaForCausalLM shifts once
    return model, fit(model, loss_at, spec, log, "fusion")


def fuse_examples(model, tok, template: str, examples: Sequence[dict], max_new_tokens: int = 48) -> list[str]:
    """Greedy fusion as the generate stage runs it (TransformersFusion), 32 prompts a batch."""
    from realsyn.udfs.generation_models import TransformersFusion
    tok.padding_side = "left"
    fusion = TransformersFusion(model, tok, "cpu", max_new_tokens)
    out = []
    for i in range(0, len(examples), 32):
        out += fusion.fuse([render_example(tok, template, e) for e in examples[i:i + 32]])
    return [" ".join(t.split()) for t in out]


def mean_precision(texts: Sequence[str], concepts: Sequence[Sequence[tuple[str, str]]]) -> float:
    """Attribute precision of each text against its scene's concepts, averaged."""
    total = 0.0
    for text, truth in zip(texts, concepts):
        total += text_precision(text, frozenset((colour, kind) for colour, kind in truth))
    return total / max(1, len(texts))


def names_concept(captions: Sequence[str], concepts: Sequence[tuple[str, str]]) -> float:
    """Share of captions that name their image's (single) concept."""
    return sum(tuple(c) in attributes_of(t) for t, c in zip(captions, concepts)) / max(1, len(captions))


def save(folder: str, *parts) -> None:
    os.makedirs(folder, exist_ok=True)
    for part in parts:
        if hasattr(part, "save_pretrained") and hasattr(part, "config"):
            part.save_pretrained(folder, safe_serialization=True)
        else:
            part.save_pretrained(folder)

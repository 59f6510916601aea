"""Causal-LM perplexity of sentences, batched, model loaded once per Python worker.

Paper: GPT-2-large, keep 30 <= PPL <= 200. `tiny` is a small GPT-2 built from config
(seeded) with the in-memory tokenizer; other names load from the hub cache or a local
save_pretrained folder (safetensors). PPL = exp(mean token negative log-likelihood);
sentences with fewer than two tokens have none (NaN).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from realsyn.udfs.locations import Location


@dataclass(frozen=True)
class PplSpec:
    model: str
    local_dir: Location   # a save_pretrained folder ("" = by name), identified by content
    seed: int
    batch_size: int
    max_tokens: int
    threads: int


class PerplexityModel:
    def __init__(self, spec: PplSpec):
        import torch
        from realsyn.udfs.clip_encoder import pick_device
        torch.set_num_threads(spec.threads)
        self.torch, self.spec, self.device = torch, spec, pick_device()
        if spec.local_dir or spec.model != "tiny":
            from transformers import AutoModelForCausalLM, AutoTokenizer
            src = spec.local_dir or spec.model
            self.model = AutoModelForCausalLM.from_pretrained(src, use_safetensors=True)
            self.tok = AutoTokenizer.from_pretrained(src)
            self.model_id = spec.model if not spec.local_dir else f"{self.model.config.model_type}@local"
        else:
            from transformers import GPT2Config, GPT2LMHeadModel
            from realsyn.udfs.generation_models import tiny_tokenizer
            self.tok = tiny_tokenizer()
            torch.manual_seed(spec.seed)
            self.model = GPT2LMHeadModel(GPT2Config(vocab_size=len(self.tok), n_embd=32, n_layer=1, n_head=2,
                                                    n_positions=max(64, spec.max_tokens)))
            self.model_id = f"tiny-gpt2@seed:{spec.seed}"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "right"
        self.model = self.model.to(self.device).eval()

    def perplexity(self, texts: list[str]) -> list[float]:
        torch = self.torch
        enc = self.tok(texts, return_tensors="pt", padding=True, truncation=True,
                       max_length=self.spec.max_tokens, return_token_type_ids=False).to(self.device)
        with torch.inference_mode():
            logits = self.model(**enc).logits.float()
        ids, mask = enc["input_ids"], enc["attention_mask"]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        m = mask[:, 1:].float()
        counts = m.sum(1)
        mean = (nll * m).sum(1) / counts.clamp(min=1)
        return [math.exp(v) if c > 0 else float("nan") for v, c in zip(mean.tolist(), counts.tolist())]


_MODELS: dict[PplSpec, PerplexityModel] = {}


def model_for(spec: PplSpec) -> PerplexityModel:
    if spec not in _MODELS:
        _MODELS[spec] = PerplexityModel(spec)
    return _MODELS[spec]


def perplexity_batches(spec: PplSpec):
    """Iterator pandas UDF body: text Series -> perplexity Series (NaN when undefined).

    Null texts are not scored (null): the stage passes null for sentences a cheaper filter
    already rejected, so the LM only sees the survivors."""
    def run(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = model_for(spec)
        for texts in batches:
            present = texts.notna().to_numpy()
            items = texts[present].tolist()
            values: list[float] = []
            for i in range(0, len(items), spec.batch_size):
                chunk = items[i:i + spec.batch_size]
                try:
                    values += model.perplexity(chunk)
                except Exception:
                    values += [float("nan")] * len(chunk)
            out = pd.Series([None] * len(texts), dtype="float64")
            out[present] = values
            yield out
    return run

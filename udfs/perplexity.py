"""Causal-LM perplexity of sentences, batched, model loaded once per Python worker.

Paper: GPT-2-large, keep 30 <= PPL <= 200. `tiny` is a small GPT-2 built from config
(seeded) with the in-memory tokenizer; other names load from the hub cache or a local
save_pretrained folder (safetensors). PPL = exp(mean token negative log-likelihood);
sentences with fewer than two tokens have none (NaN).

A batch's shape picks the kernels, so a sentence's perplexity would change in its last bits
with the sentences that shared its batch (and so with where a unit ended). Each sentence
is therefore scored in a batch of exactly `batch_size` rows padded to its own length
bucket (`length_bucket`): its shape, hence its value, depends on its own tokens only.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from realsyn.udfs import declared as d
from realsyn.udfs.locations import Location


@dataclass(frozen=True, kw_only=True)
class PplSpec:
    """The perplexity LM (sentences.ppl_*) and how it scores."""
    model: str = d.preset("ppl_lm")
    local_dir: Location = d.weights("ppl_lm")   # a save_pretrained folder ("" = by name), identified by content
    seed: int = d.setting("run.seed")
    batch_size: int = d.setting("sentences.ppl_batch_size")
    max_tokens: int = d.setting("sentences.ppl_max_tokens")
    threads: int = d.setting("models.torch_threads")


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

    def token_counts(self, texts: list[str]) -> list[int]:
        enc = self.tok(texts, truncation=True, max_length=self.spec.max_tokens, return_token_type_ids=False)
        return [len(ids) for ids in enc["input_ids"]]

    def perplexity(self, texts: list[str], pad_to: int | None = None) -> list[float]:
        """pad_to: pad every text to this many tokens (else to the longest in the batch)."""
        torch = self.torch
        padding = {"padding": "max_length", "max_length": pad_to} if pad_to else \
            {"padding": True, "max_length": self.spec.max_tokens}
        enc = self.tok(texts, return_tensors="pt", truncation=True, return_token_type_ids=False,
                       **padding).to(self.device)
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
            values = [float("nan")] * len(items)
            buckets: dict[int, list[int]] = {}
            for i, n in enumerate(model.token_counts(items) if items else []):
                buckets.setdefault(length_bucket(n, spec.max_tokens), []).append(i)
            for width, rows in sorted(buckets.items()):
                for first in range(0, len(rows), spec.batch_size):
                    chunk = rows[first:first + spec.batch_size]
                    filled = [items[i] for i in chunk] + [items[chunk[0]]] * (spec.batch_size - len(chunk))
                    try:
                        got = model.perplexity(filled, pad_to=width)[:len(chunk)]
                    except Exception:
                        got = [float("nan")] * len(chunk)
                    for i, v in zip(chunk, got):
                        values[i] = v
            out = pd.Series([None] * len(texts), dtype="float64")
            out[present] = values
            yield out
    return run


BUCKET_TOKENS = 16


def length_bucket(tokens: int, max_tokens: int) -> int:
    """The padded length a text of `tokens` tokens is scored at: the next multiple of
    BUCKET_TOKENS, at most max_tokens (longer texts are truncated there)."""
    return min(max_tokens, max(BUCKET_TOKENS, -(-tokens // BUCKET_TOKENS) * BUCKET_TOKENS))

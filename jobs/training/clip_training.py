"""Contrastive training of a CLIP encoder with open_clip's own loss (`open_clip.loss.ClipLoss`).

One small loop for every model this project trains on the CPU: the teacher (from a noisy
alt-text split of the world, jobs/training/teacher.py) and, later, the student trained on an export.
It trains the pipeline's own `Encoder` (udfs/clip_encoder.py), so the images are
preprocessed and the texts tokenised exactly as the embed stage will, and the weights it
saves are loaded back through `models.weights_dir` with no special case.

Each sample carries one or more candidate texts; every step draws one of them at random per
sample (as the paper trains on R1-R3 and the synthetic text).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from realsyn.udfs.clip_encoder import Encoder


@dataclass(frozen=True)
class TrainSpec:
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0


def learning_rate(spec: TrainSpec, step: int) -> float:
    """Linear warm-up, then cosine decay to zero (the schedule open_clip's training uses)."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    done = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return 0.5 * spec.lr * (1 + math.cos(math.pi * min(1.0, done)))


def preprocess_all(encoder: Encoder, images: Sequence, batch: int = 256):
    """Every image as the pipeline's input tensor, once (the loop then only indexes)."""
    torch = encoder.torch
    return torch.cat([encoder.preprocess_batch(list(images[i:i + batch])) for i in range(0, len(images), batch)])


def train_contrastive(encoder: Encoder, pixels, texts: Sequence[Sequence[str]], spec: TrainSpec,
                      log: Callable[[str], None] = print) -> list[float]:
    """Train `encoder.model` in place on (pixels[i], one of texts[i]); returns the loss per step.
    Batches walk a fresh permutation each epoch, so every sample is seen once per epoch."""
    import torch
    from open_clip.loss import ClipLoss
    if len(texts) != len(pixels):
        raise ValueError(f"{len(pixels)} images but {len(texts)} text lists")
    if any(not options for options in texts):
        raise ValueError("every sample needs at least one text")
    n = len(pixels)
    batch = min(spec.batch_size, n)
    rng = np.random.default_rng(spec.seed)
    torch.manual_seed(spec.seed)
    model = encoder.model.train()
    decay = [p for name, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in name]
    rest = [p for name, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in name]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=spec.lr)
    loss_fn = ClipLoss(cache_labels=True)
    losses: list[float] = []
    order, at = rng.permutation(n), 0
    started = time.time()
    for step in range(spec.steps):
        if at + batch > n:
            order, at = rng.permutation(n), 0
        idx = order[at:at + batch]
        at += batch
        chosen = [texts[i][rng.integers(len(texts[i]))] for i in idx]
        for group in opt.param_groups:
            group["lr"] = learning_rate(spec, step)
        image_features, text_features, scale = model(pixels[torch.from_numpy(idx)], encoder.tokenizer(chosen))[:3]
        loss = loss_fn(image_features, text_features, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():       # CLIP's clamp: the temperature never exceeds 100
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if (step + 1) % max(1, spec.steps // 10) == 0 or step + 1 == spec.steps:
            log(f"step {step + 1}/{spec.steps}: loss {np.mean(losses[-20:]):.3f} ({time.time() - started:.0f}s)")
    model.eval()
    return losses


def save_weights(encoder: Encoder, path: str) -> str:
    """The model's state as .safetensors (no pickle), the form `models.weights_dir` loads."""
    from safetensors.torch import save_file
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.model.state_dict().items()}
    save_file(state, path)
    return path

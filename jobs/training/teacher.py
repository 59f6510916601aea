"""The teacher: the pipeline's tiny CLIP, trained on the world's noisy alt-text split.

The split (`<world>/teacher/pairs.parquet`, never in the corpus) plays the web alt-text a
real CLIP was trained on. The weights go to `<weights_dir>/clip/teacher.safetensors`, which
the embed, generate and balance stages load through `models.weights_dir` as they would real
weights; `<weights_dir>/teacher.json` records how it was trained and its zero-shot scores on
the world's held-out set. A teacher whose inputs (the split, the settings, this code) are
unchanged is not trained again.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Callable

from realsyn.jobs.training import training_cache
from realsyn.jobs.training.clip_training import TrainSpec, preprocess_all, save_weights, train_contrastive
from realsyn.jobs.training.zero_shot import evaluate_encoder, read_image_folder
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec

WEIGHTS_FILE = os.path.join("clip", "teacher.safetensors")
REPORT_FILE = "teacher.json"


def inputs_key(world: str, spec: TrainSpec) -> str:
    """What the teacher is a function of: the pairs file, the settings, the tiny CLIP's
    geometry (weights of another geometry would not load) and the training code."""
    from realsyn.jobs.training import clip_training
    from realsyn.udfs.clip_encoder import TINY
    return training_cache.inputs_key({**asdict(spec), "tiny": TINY}, [os.path.join(world, "teacher", "pairs.parquet"),
                                                                      clip_training.__file__, __file__])


def train_teacher(world: str, weights_dir: str, spec: TrainSpec = TrainSpec(), threads: int = 2,
                  log: Callable[[str], None] = print, force: bool = False) -> dict:
    """Train (or reuse) the teacher; returns its report (also written to teacher.json)."""
    import pyarrow.parquet as pq
    from PIL import Image
    key = inputs_key(world, spec)
    if not force and (report := training_cache.cached_report(
            os.path.join(weights_dir, REPORT_FILE), os.path.join(weights_dir, WEIGHTS_FILE), key)) is not None:
        log(f"teacher: unchanged inputs ({key}), reusing {os.path.join(weights_dir, WEIGHTS_FILE)}")
        return report
    pairs = pq.read_table(os.path.join(world, "teacher", "pairs.parquet")).to_pylist()
    images = []
    for row in pairs:
        with Image.open(os.path.join(world, "teacher", row["image_path"])) as im:
            images.append(im.convert("RGB"))
    encoder = Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=spec.seed, threads=threads, mixed_precision=False))
    before, _ = evaluate_encoder(encoder, read_image_folder(os.path.join(world, "eval")))
    started = time.time()
    losses = train_contrastive(encoder, preprocess_all(encoder, images), [[r["text"]] for r in pairs], spec, log)
    seconds = time.time() - started
    after, _ = evaluate_encoder(encoder, read_image_folder(os.path.join(world, "eval")))
    os.makedirs(os.path.join(weights_dir, "clip"), exist_ok=True)
    save_weights(encoder, os.path.join(weights_dir, WEIGHTS_FILE))
    report = {"inputs_key": key, "pairs": len(pairs), "train": asdict(spec), "seconds": round(seconds, 1),
              "first_loss": losses[0], "last_loss": sum(losses[-20:]) / len(losses[-20:]),
              "untrained": before, "trained": after}
    training_cache.write_report(os.path.join(weights_dir, REPORT_FILE), report)
    log(f"teacher: {len(pairs)} pairs, {spec.steps} steps in {seconds:.0f}s; zero-shot accuracy "
        f"{before['zero_shot_acc']:.3f} untrained -> {after['zero_shot_acc']:.3f}"
        + (f" (colour right {after['part_1_acc']:.3f}, shape right {after['part_2_acc']:.3f})"
           if "part_2_acc" in after else ""))
    return report

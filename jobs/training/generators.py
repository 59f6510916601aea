"""`realsyn teach`'s second half: the world's captioner, fusion LLM and perplexity LM, trained or reused.

They go where the generate and extract_sentences stages load local weights
(`<weights_dir>/captioner`, `<weights_dir>/llm`, `<weights_dir>/ppl_lm`, save_pretrained
folders), with a report beside each (`captioner.json`, `llm.json`, `ppl_lm.json`: how it
was trained, its score, the inputs key that lets an unchanged model be reused). The
captioner is a function of the world's alt-text split; the LLM and the perplexity LM only
of the world's grammar (jobs/training/perplexity_lm.py) and the fusion prompt.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Callable

from realsyn.jobs.training import generator_training as gt
from realsyn.jobs.training.clip_training import TrainSpec
from realsyn.jobs.training import training_cache
from realsyn.jobs.world import language as world_language
from realsyn.jobs.world import truth as world_truth
from realsyn.jobs.world.language import FusionNoise
from realsyn.jobs.world.truth import all_concepts

CAPTIONER, LLM = "captioner", "llm"
GENERATOR_WEIGHT_DECAY = 0.01   # the CLIP's 0.1 is for a contrastive loss; these are language models
CODE = [gt.__file__, world_language.__file__, world_truth.__file__, __file__]


def paths(weights_dir: str, role: str) -> tuple[str, str]:
    folder = os.path.join(weights_dir, role)
    return folder, os.path.join(weights_dir, f"{role}.json")


def reuse(weights_dir: str, role: str, key: str, force: bool, log: Callable[[str], None]) -> dict | None:
    folder, report = paths(weights_dir, role)
    cached = None if force else training_cache.cached_report(report, os.path.join(folder, "model.safetensors"), key)
    if cached is not None:
        log(f"{role}: unchanged inputs ({key}), reusing {folder}")
    return cached


def train_world_captioner(world: str, weights_dir: str, template: str, spec: TrainSpec,
                          log: Callable[[str], None] = print, force: bool = False) -> dict:
    """The captioner from the world's alt-text pairs, scored on the held-out eval images."""
    import pyarrow.parquet as pq
    from PIL import Image
    from realsyn.jobs.training.zero_shot import read_image_folder
    pairs_file = os.path.join(world, "teacher", "pairs.parquet")
    key = training_cache.inputs_key({"spec": asdict(spec), "template": template}, [pairs_file, *CODE])
    if (cached := reuse(weights_dir, CAPTIONER, key, force, log)) is not None:
        return cached
    pairs = pq.read_table(pairs_file).to_pylist()
    images = []
    for row in pairs:
        with Image.open(os.path.join(world, "teacher", row["image_path"])) as im:
            images.append(im.convert("RGB"))
    tok = world_language.world_tokenizer(spec.seed, template)
    started = time.time()
    model, processor, losses = gt.train_captioner(images, [r["text"] for r in pairs], tok, spec, log)
    seconds = time.time() - started
    held_out = read_image_folder(os.path.join(world, "eval"))
    eval_images = []
    for path in held_out.paths:
        with Image.open(path) as im:
            eval_images.append(im.convert("RGB"))
    captions = gt.caption_images(model, processor, tok, eval_images)
    truth = [tuple(held_out.classes[label].split("_", 1)) for label in held_out.labels]
    names = gt.names_concept(captions, truth)
    precision = gt.mean_precision(captions, [[c] for c in truth])
    folder, report_path = paths(weights_dir, CAPTIONER)
    gt.save(folder, model, processor, tok)
    report = {"inputs_key": key, "pairs": len(pairs), "train": asdict(spec), "seconds": round(seconds, 1),
              "first_loss": losses[0], "last_loss": sum(losses[-20:]) / len(losses[-20:]),
              "eval_images": len(captions), "names_concept": names, "attribute_precision": precision,
              "examples": [{"class": held_out.classes[label], "caption": c}
                           for label, c in list(zip(held_out.labels, captions))[::max(1, len(captions) // 6)]]}
    training_cache.write_report(report_path, report)
    log(f"captioner: {len(pairs)} pairs, {spec.steps} steps in {seconds:.0f}s; names the concept of "
        f"{100 * names:.1f}% of held-out images (attribute precision {100 * precision:.1f}%)")
    return report


def train_world_fusion(weights_dir: str, template: str, spec: TrainSpec, n_examples: int,
                       noise: FusionNoise = FusionNoise(), log: Callable[[str], None] = print,
                       force: bool = False) -> dict:
    """The fusion LLM from examples of the world's grammar (every concept equally often, so
    the rare ones are learnt too), scored on fresh examples against the caption alone and the
    raw text alone."""
    settings = {"spec": asdict(spec), "template": template, "examples": n_examples, "noise": asdict(noise)}
    key = training_cache.inputs_key(settings, CODE)
    if (cached := reuse(weights_dir, LLM, key, force, log)) is not None:
        return cached
    uniform = {c: 1.0 for c in all_concepts()}
    tok = world_language.world_tokenizer(spec.seed, template)
    examples = gt.fusion_examples(spec.seed, uniform, n_examples, noise, "train")
    started = time.time()
    model, losses = gt.train_fusion(examples, template, tok, spec, log)
    seconds = time.time() - started
    test = gt.fusion_examples(spec.seed, uniform, 200, noise, "test")
    fused = gt.fuse_examples(model, tok, template, test)
    truth = [e["concepts"] for e in test]
    scores = {"fused": gt.mean_precision(fused, truth),
              "caption_alone": gt.mean_precision([e["caption"] for e in test], truth),
              "raw_text_alone": gt.mean_precision([e["raw_text"] for e in test], truth)}
    folder, report_path = paths(weights_dir, LLM)
    gt.save(folder, model, tok)
    report = {"inputs_key": key, "examples": n_examples, "noise": asdict(noise), "train": asdict(spec),
              "seconds": round(seconds, 1), "first_loss": losses[0],
              "last_loss": sum(losses[-20:]) / len(losses[-20:]), "held_out_precision": scores,
              "samples": [{"caption": e["caption"], "raw_text": e["raw_text"], "tags": e["tags"], "fused": f}
                          for e, f in list(zip(test, fused))[:4]]}
    training_cache.write_report(report_path, report)
    log(f"fusion LLM: {n_examples} examples, {spec.steps} steps in {seconds:.0f}s; attribute precision on "
        f"held-out examples {100 * scores['fused']:.1f}% (caption alone {100 * scores['caption_alone']:.1f}%, "
        f"raw text alone {100 * scores['raw_text_alone']:.1f}%)")
    return report


def teach_generators(world: str, weights_dir: str, cfg, log: Callable[[str], None] = print,
                     force: bool = False) -> dict[str, dict]:
    """The captioner, the fusion LLM and the perplexity LM with the `teacher.*` settings and
    the conf's fusion prompt: {role: report}."""
    import torch
    from realsyn.jobs.training.perplexity_lm import PPL_LM, band_mismatch, train_world_ppl_lm
    torch.set_num_threads(cfg.get("teacher.threads"))
    template, seed = cfg.get("generation.prompt_template"), cfg.get("run.seed")
    captioner = train_world_captioner(world, weights_dir, template, TrainSpec(
        steps=cfg.get("teacher.captioner_steps"), batch_size=cfg.get("teacher.captioner_batch_size"),
        lr=cfg.get("teacher.captioner_lr"), weight_decay=GENERATOR_WEIGHT_DECAY, seed=seed),
        log, force)
    fusion = train_world_fusion(weights_dir, template, TrainSpec(
        steps=cfg.get("teacher.fusion_steps"), batch_size=cfg.get("teacher.fusion_batch_size"),
        lr=cfg.get("teacher.fusion_lr"), weight_decay=GENERATOR_WEIGHT_DECAY, seed=seed),
        cfg.get("teacher.fusion_examples"), log=log, force=force)
    ppl_lm = train_world_ppl_lm(weights_dir, template, TrainSpec(
        steps=cfg.get("teacher.ppl_steps"), batch_size=cfg.get("teacher.ppl_batch_size"),
        lr=cfg.get("teacher.ppl_lr"), weight_decay=GENERATOR_WEIGHT_DECAY, seed=seed),
        cfg.get("teacher.ppl_sentences"), log=log, force=force)
    if cfg.get("sentences.perplexity_filter") and (warning := band_mismatch(ppl_lm, cfg)):
        log(f"WARNING: {warning}")
    return {CAPTIONER: captioner, LLM: fusion, PPL_LM: ppl_lm}

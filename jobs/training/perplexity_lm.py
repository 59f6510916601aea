"""The world's perplexity LM for extract_sentences, trained on the world's prose, and its band.

The paper filters sentences by GPT-2-large's perplexity, keeping 30 <= PPL <= 200: text a
model of the language finds too predictable (boilerplate) or too surprising (garbled,
off-grammar) goes. The world's language is its grammar (jobs/world/truth.py: descriptions
and page prose), so its LM is a small GPT-2 trained on sentences drawn from that grammar,
never on the corpus under test, saved where extract_sentences loads local weights
(`<weights_dir>/ppl_lm`).

The band is calibrated on held-out prose of the same grammar, scored by the stage's own
scorer (udfs/perplexity.perplexity_batches, loading the saved folder): `ppl_max` is the
held-out prose's `KEEP_QUANTILE` quantile times `MARGIN`, so about 1% of well-formed
prose lies above it before the margin and almost none after. `ppl_min` is 0: the world's
most predictable sentences are its descriptions, and the text a floor would catch
(repetition) is the entropy filter's work. docs/parameters.md says how the world's
config took its band from this report.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict
from typing import Callable, Sequence

from realsyn.jobs.training import training_cache
from realsyn.jobs.training.clip_training import TrainSpec
from realsyn.jobs.world.truth import all_concepts, describe, distractor_sentence, draw_spec

PPL_LM = "ppl_lm"
KEEP_QUANTILE = 0.99
MARGIN = 1.5
MAX_TOKENS = 128


def world_prose(seed: int, n: int, stream: str) -> list[str]:
    """n sentences of the world's grammar, half descriptions (every concept equally often,
    some with a wrong attribute, as the corpus states them) and half page prose."""
    rng = random.Random(f"{seed}:prose:{stream}")
    uniform = {c: 1.0 for c in all_concepts()}
    return [describe(draw_spec(rng, uniform), rng, 0.15).text if i % 2 == 0 else distractor_sentence(rng)
            for i in range(n)]


def build_ppl_lm(tok):
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=128, n_layer=2, n_head=4, n_positions=MAX_TOKENS,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id))


def train_ppl_lm(texts: Sequence[str], tok, spec: TrainSpec, log: Callable[[str], None] = print):
    """(model, losses): next-token loss on each sentence as the stage's scorer encodes it."""
    import torch
    from realsyn.jobs.training.generator_training import fit
    torch.manual_seed(spec.seed)
    model = build_ppl_lm(tok)
    seqs = [ids for ids in tok(list(texts), truncation=True, max_length=MAX_TOKENS)["input_ids"] if len(ids) > 1]
    gen = torch.Generator().manual_seed(spec.seed)
    order = torch.randperm(len(seqs), generator=gen).tolist()

    def loss_at(step: int):
        idx = [order[(step * spec.batch_size + j) % len(order)] for j in range(spec.batch_size)]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id)
        labels = torch.full((len(idx), width), -100)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            s = torch.tensor(seqs[i])
            ids[row, :len(s)], labels[row, :len(s)], mask[row, :len(s)] = s, s, 1
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss   # GPT2LMHeadModel shifts once
    return model, fit(model, loss_at, spec, log, "perplexity LM")


def score(folder: str, texts: Sequence[str], seed: int, batch_size: int = 16) -> list[float]:
    """Perplexities by the stage's own UDF body (udfs/perplexity.perplexity_batches), from the saved folder."""
    import pandas as pd
    from realsyn.udfs.perplexity import PplSpec, perplexity_batches
    body = perplexity_batches(PplSpec(model=PPL_LM, local_dir=folder, seed=seed, batch_size=batch_size,
                                      max_tokens=MAX_TOKENS, threads=1))
    return [float(v) for v in next(body(iter([pd.Series(list(texts), dtype="object")])))]


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        raise ValueError("no defined perplexity to calibrate on")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def band(held_out: Sequence[float]) -> dict[str, float]:
    """{ppl_min, ppl_max} from the held-out prose's perplexities (the module docstring's rule)."""
    return {"ppl_min": 0.0, "ppl_max": round(MARGIN * quantile(held_out, KEEP_QUANTILE), 1)}


def train_world_ppl_lm(weights_dir: str, template: str, spec: TrainSpec, n_sentences: int,
                       log: Callable[[str], None] = print, force: bool = False, n_held_out: int = 1000) -> dict:
    """Train (or reuse) the LM, calibrate its band on fresh prose, and report both."""
    from realsyn.jobs.training import generators
    from realsyn.jobs.training.generator_training import save
    from realsyn.jobs.world import language as world_language
    settings = {"spec": asdict(spec), "template": template, "sentences": n_sentences, "held_out": n_held_out,
                "keep_quantile": KEEP_QUANTILE, "margin": MARGIN}
    key = training_cache.inputs_key(settings, [*generators.CODE, __file__])
    if (cached := generators.reuse(weights_dir, PPL_LM, key, force, log)) is not None:
        return cached
    tok = world_language.world_tokenizer(spec.seed, template)
    started = time.time()
    model, losses = train_ppl_lm(world_prose(spec.seed, n_sentences, "train"), tok, spec, log)
    seconds = time.time() - started
    folder, report_path = generators.paths(weights_dir, PPL_LM)
    save(folder, model, tok)
    held_out = score(folder, world_prose(spec.seed, n_held_out, "held_out"), spec.seed)
    calibrated = band(held_out)
    report = {"inputs_key": key, "sentences": n_sentences, "held_out": n_held_out, "train": asdict(spec),
              "seconds": round(seconds, 1),
              "first_loss": losses[0], "last_loss": sum(losses[-20:]) / len(losses[-20:]),
              "held_out_perplexity": {q: round(quantile(held_out, float(q)), 2)
                                      for q in ("0.01", "0.5", "0.9", "0.99")},
              "band": calibrated}
    training_cache.write_report(report_path, report)
    log(f"perplexity LM: {n_sentences} sentences, {spec.steps} steps in {seconds:.0f}s; held-out prose median "
        f"{report['held_out_perplexity']['0.5']}, calibrated band sentences.ppl_min={calibrated['ppl_min']} "
        f"sentences.ppl_max={calibrated['ppl_max']}")
    return report


def band_mismatch(report: dict, cfg) -> str | None:
    """A warning when the config's band is not the one calibrated for the trained LM."""
    want = report["band"]
    have = {k: float(cfg.get(f"sentences.{k}")) for k in want}
    if all(abs(have[k] - v) <= 0.05 * max(1.0, v) for k, v in want.items()):
        return None
    return (f"sentences.ppl_min/ppl_max are {have['ppl_min']}/{have['ppl_max']}, but the perplexity LM trained "
            f"here is calibrated to {want['ppl_min']}/{want['ppl_max']} (ppl_lm.json): set them "
            f"(docs/parameters.md, 'The world's perplexity band')")

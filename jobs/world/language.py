"""The world's language for the generators trained on it: a tokenizer and fusion examples.

The tokenizer is a byte-level BPE (any text still encodes) whose merges come from the
world's own sentences and the fusion prompt, so a caption or a prompt is a few dozen tokens
instead of hundreds of bytes. It carries the chat template of the tiny preset
(udfs/generation_models.py), so the generate stage renders prompts for it unchanged.

A fusion example is what the generate stage hands the LLM, drawn from the world's grammar:
the caption of an imperfect captioner (a description with an attribute swapped at
`caption_noise`), a retrieved raw text (the same scene at `raw_noise`, or with probability
`raw_miss` a scene that shares one concept or none), and CLIP-style tags (some of the
scene's colour and shape words among wrong ones; FusionNoise). The target is an exact description
of the scene. So the LLM learns the fusion the paper asks of Llama-3: say what the caption
and tags agree on, keep the raw text's details only where they fit. This is the world's
analogue of instruction tuning; the examples never come from the corpus.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from realsyn.jobs.world.truth import (BACKGROUND_WORDS, COLOURS, KINDS, PLURALS, Concept, SceneSpec, all_concepts,
                                      class_prompts, describe, distractor_sentence, draw_spec, spec_concepts)
from realsyn.udfs.generation_models import bpe_tokenizer

# Words a tagger mined from the world's pool might put beside the right ones.
TAG_NOISE_WORDS = ("background", "picture", "image", "small", "large", "left", "right", "top", "bottom",
                   "shows", "rain", "team", "bread", "council", *{w for ws in BACKGROUND_WORDS.values() for w in ws})


def language_samples(seed: int, n: int, prompt_template: str) -> list[str]:
    """Text the tokenizer learns its merges from: descriptions, prompts, page prose."""
    rng = random.Random(f"{seed}:language")
    freq = {c: 1.0 for c in all_concepts()}
    texts = [prompt_template] * 50   # one prompt, many times: its words become single tokens
    for _ in range(n):
        texts.append(describe(draw_spec(rng, freq), rng, 0.2).text)
        texts.append(distractor_sentence(rng))
    texts += [p for colour, kind in all_concepts() for p in class_prompts(kind, colour)]
    return texts


def world_tokenizer(seed: int, prompt_template: str, vocab_size: int = 1200):
    """A PreTrainedTokenizerFast for the world (pad, bos, eos and the chat template set)."""
    texts = language_samples(seed, 3000, prompt_template)
    return bpe_tokenizer(texts + [t.lower() for t in texts], vocab_size=vocab_size, min_frequency=2)


@dataclass(frozen=True)
class FusionNoise:
    """How wrong each input is. The defaults follow what the world's pipeline hands the LLM:
    the trained captioner names the right concept a little more often than not, the CLIP
    tags pick a right colour or shape word about half the time among words of the page
    prose, and R1 is about the image about two times in three."""
    caption_noise: float = 0.4   # the captioner names a wrong colour or shape
    raw_noise: float = 0.3       # the retrieved sentence describes the scene with one attribute swapped
    raw_miss: float = 0.4        # the retrieved sentence is about another scene
    tag_keep: float = 0.5        # each of the scene's colour and shape words is among the tags
    tag_noise: int = 3           # wrong words among the tags (at most)


def _related_spec(rng: random.Random, spec: SceneSpec, freq: dict[Concept, float]) -> SceneSpec:
    """Another scene, sharing one of spec's concepts half the time (a retrieval's near miss)."""
    other = draw_spec(rng, freq)
    if rng.random() < 0.5:
        shared = rng.choice(spec.groups)
        g = rng.randrange(len(other.groups))
        groups = list(other.groups)
        groups[g] = type(shared)(shared.kind, shared.colour, groups[g].size, groups[g].count, groups[g].position)
        if len({x.concept for x in groups}) == len(groups):
            return SceneSpec(tuple(groups), other.background)
    return other


def scene_tags(rng: random.Random, spec: SceneSpec, noise: FusionNoise) -> list[str]:
    """Up to five single-word tags, as the CLIP tagger picks them from the mined vocabulary."""
    right = []
    for g in spec.groups:
        right += [g.colour, g.kind if g.count == 1 or rng.random() < 0.5 else PLURALS[g.kind]]
    right = [w for w in right if rng.random() < noise.tag_keep]
    wrong = rng.sample(TAG_NOISE_WORDS + tuple(COLOURS) + KINDS, rng.randint(1 if not right else 0, noise.tag_noise))
    tags = list(dict.fromkeys(right + [w for w in wrong if w not in right]))
    rng.shuffle(tags)
    return tags[:5]


def fusion_example(rng: random.Random, freq: dict[Concept, float], noise: FusionNoise) -> dict:
    """One (raw_text, caption, tags) -> target example, with the scene's concepts."""
    spec = draw_spec(rng, freq)
    caption = describe(spec, rng, noise.caption_noise).text.lower()
    raw_spec = _related_spec(rng, spec, freq) if rng.random() < noise.raw_miss else spec
    raw = describe(raw_spec, rng, noise.raw_noise).text
    return {"raw_text": raw, "caption": caption, "tags": scene_tags(rng, spec, noise),
            "target": describe(spec, rng, 0.0).text.lower(), "concepts": sorted(spec_concepts(spec))}

"""The learnable world's concepts and language: what a scene holds and how text describes it.

A scene is one or two groups of identical shapes (kind, colour, size, count, position) on a
textured background. Concepts are (colour, kind) pairs; their frequency is long-tailed
(Zipf-like), so some are rare, as on the web. `describe` writes one English sentence for a
scene, paraphrased over templates and verbs, and with probability `noise` swaps one
attribute (a wrong colour or kind), recording the swap so data quality can be measured.
Pure Python: no images, no Spark (world_scene.py draws the pictures).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

Concept = tuple[str, str]   # (colour, kind)

KINDS = ("circle", "square", "triangle", "star", "cross", "ring")
PLURALS = {**{k: k + "s" for k in KINDS}, "cross": "crosses"}
# Saturated object colours; backgrounds are light neutral tones (world_scene.py), so every
# colour stands out from every background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35), "orange": (245, 135, 15), "yellow": (235, 205, 20), "green": (35, 155, 55),
    "cyan": (20, 185, 200), "blue": (35, 70, 210), "purple": (125, 45, 170), "pink": (240, 105, 180),
    "brown": (120, 70, 30), "black": (25, 25, 25),
}
COUNTS = (1, 2, 3)
COUNT_WEIGHTS = (0.5, 0.3, 0.2)
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")
# Two groups take opposite sides, so their shapes never overlap.
POSITION_PAIRS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"))
BACKGROUNDS = ("plain", "striped", "dotted", "noisy")

COUNT_WORDS = {2: "two", 3: "three"}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
POSITION_WORDS = {"left": ("on the left", "on the left side"), "right": ("on the right", "on the right side"),
                  "top": ("at the top", "near the top"), "bottom": ("at the bottom", "near the bottom"),
                  "centre": ("in the centre", "in the middle")}
BACKGROUND_WORDS = {"plain": ("plain",), "striped": ("striped",), "dotted": ("dotted", "spotted"),
                    "noisy": ("noisy", "grainy")}
# (singular, plural): the subject's count picks the form.
VERBS = (("sits", "sit"), ("rests", "rest"), ("appears", "appear"), ("floats", "float"),
         ("stands", "stand"), ("lies", "lie"), ("hovers", "hover"), ("glows", "glow"))
# Sentence frames whose clause has its own verb ({scene} holds "<group> <verb> <where>").
VERB_FRAMES = ("{scene} against a {bg} background.", "On a {bg} background, {scene}.",
               "{scene}, drawn over a {bg} background.", "Against a {bg} background, {scene}.")
# Frames that bring the verb themselves ({scene} holds "<group> <where>").
NOUN_FRAMES = ("The picture shows {scene} on a {bg} background.", "This image shows {scene} against a {bg} background.",
               "We can see {scene} over a {bg} background.", "Someone drew {scene} on a {bg} background.",
               "The artist painted {scene} against a {bg} background.")
ONE_GROUP_FRAME = "{scene} of a {bg} background."   # "Two red circles sit on the left of a striped background."
ACTION_WORDS = frozenset(w for pair in VERBS for w in pair) | {"shows", "see", "drew", "painted", "drawn"}
PROMPT_FRAMES = ("a photo of {a} {colour} {kind}.", "a picture of {a} {colour} {kind}.",
                 "a drawing of {a} {colour} {kind}.", "an image with {a} {colour} {kind}.")

# Distractor prose: page text about anything but the pictures (no colour or shape words).
DISTRACTOR_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "weather": (("the morning fog", "a cold wind", "heavy rain", "the afternoon sun", "a light drizzle",
                 "the evening storm"),
                ("covered", "swept across", "soaked", "warmed", "drifted over", "battered"),
                ("the harbour town", "the northern hills", "the quiet valley", "the coastal road", "the old market hall"),
                ("before noon", "for most of the day", "on Tuesday", "late last night", "again this week")),
    "recipes": (("the cook", "my grandmother", "our neighbour", "a patient baker", "the chef"),
                ("stirs", "bakes", "chops", "simmers", "roasts", "seasons"),
                ("the onions", "the tomato sauce", "fresh basil", "the bread dough", "the potatoes", "a pot of beans"),
                ("for ten minutes", "until golden", "over low heat", "before serving", "in a deep pan")),
    "sports": (("the home team", "the young striker", "the visiting side", "our captain", "the veteran coach"),
               ("won", "lost", "celebrated", "defended", "played"),
               ("the final match", "a late goal", "the cup", "the league title", "the derby"),
               ("in the second half", "after extra time", "on Saturday", "in front of a full stadium",
                "despite several injuries")),
    "town": (("the council", "local residents", "the new mayor", "a family bakery", "the museum"),
             ("opened", "discussed", "approved", "renovated", "welcomed"),
             ("the new library", "a plan for the park", "the summer festival", "the old train station",
              "visitors from abroad"),
             ("last month", "after a long debate", "this spring", "with great enthusiasm", "on the main street")),
}

_WORD = re.compile(r"[a-z]+")
_KIND_OF_WORD = {**{k: k for k in KINDS}, **{p: k for k, p in PLURALS.items()}}


@dataclass(frozen=True)
class ShapeGroup:
    """`count` identical shapes (kind, colour, size) at one position."""
    kind: str
    colour: str
    size: str
    count: int
    position: str

    @property
    def concept(self) -> Concept:
        return (self.colour, self.kind)


@dataclass(frozen=True)
class SceneSpec:
    groups: tuple[ShapeGroup, ...]
    background: str

    def to_json(self) -> str:
        return json.dumps({"background": self.background, "groups": [g.__dict__ for g in self.groups]},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SceneSpec":
        data = json.loads(text)
        return cls(tuple(ShapeGroup(**g) for g in data["groups"]), data["background"])


@dataclass(frozen=True)
class Swap:
    """One attribute a description states wrongly: group index, attribute, truth, what the text says."""
    group: int
    attribute: str   # "colour" | "kind"
    truth: str
    shown: str


@dataclass(frozen=True)
class Description:
    text: str
    swap: Swap | None   # None: the text states the scene exactly

    @property
    def noisy(self) -> bool:
        return self.swap is not None


def all_concepts() -> list[Concept]:
    return [(c, k) for c in COLOURS for k in KINDS]


def zipf_frequencies(rng: random.Random, exponent: float = 1.1) -> dict[Concept, float]:
    """A random ranking of the concepts with weight 1 / rank**exponent: a long tail."""
    concepts = all_concepts()
    rng.shuffle(concepts)
    return {c: 1.0 / (rank + 1) ** exponent for rank, c in enumerate(concepts)}


def _group(rng: random.Random, concept: Concept, position: str) -> ShapeGroup:
    colour, kind = concept
    return ShapeGroup(kind, colour, rng.choice(SIZES), rng.choices(COUNTS, COUNT_WEIGHTS)[0], position)


def draw_spec(rng: random.Random, freq: dict[Concept, float], two_groups: float = 0.4) -> SceneSpec:
    """One scene: one group, or (probability two_groups) two of different concepts on opposite sides."""
    concepts, weights = list(freq), list(freq.values())
    first = rng.choices(concepts, weights)[0]
    if rng.random() >= two_groups or len(concepts) < 2:
        return SceneSpec((_group(rng, first, rng.choice(POSITIONS)),), rng.choice(BACKGROUNDS))
    second = first
    while second == first:
        second = rng.choices(concepts, weights)[0]
    a, b = rng.choice(POSITION_PAIRS)
    return SceneSpec((_group(rng, first, a), _group(rng, second, b)), rng.choice(BACKGROUNDS))


def class_spec(rng: random.Random, concept: Concept) -> SceneSpec:
    """A scene of one concept only (the zero-shot eval's images)."""
    return SceneSpec((_group(rng, concept, rng.choice(POSITIONS)),), rng.choice(BACKGROUNDS))


def spec_concepts(spec: SceneSpec) -> frozenset[Concept]:
    return frozenset(g.concept for g in spec.groups)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(rng: random.Random, g: ShapeGroup) -> str:
    words = [rng.choice(SIZE_WORDS[g.size])] if rng.random() < 0.75 else []   # size is often left unsaid
    words += [g.colour, g.kind if g.count == 1 else PLURALS[g.kind]]
    if g.count == 1:
        head = rng.choice((article(words[0]), "one"))
    else:
        head = COUNT_WORDS[g.count]
    return " ".join([head, *words])


def _swap(rng: random.Random, spec: SceneSpec) -> tuple[SceneSpec, Swap]:
    """The spec with one attribute of one group changed to a concept the scene does not hold."""
    i = rng.randrange(len(spec.groups))
    g = spec.groups[i]
    taken = spec_concepts(spec)
    attribute = rng.choice(("colour", "kind"))
    if attribute == "colour":
        shown = rng.choice([c for c in COLOURS if (c, g.kind) not in taken])
        wrong = ShapeGroup(g.kind, shown, g.size, g.count, g.position)
    else:
        shown = rng.choice([k for k in KINDS if (g.colour, k) not in taken])
        wrong = ShapeGroup(shown, g.colour, g.size, g.count, g.position)
    groups = spec.groups[:i] + (wrong,) + spec.groups[i + 1:]
    return SceneSpec(groups, spec.background), Swap(i, attribute, getattr(g, attribute), shown)


def describe(spec: SceneSpec, rng: random.Random, noise: float = 0.0) -> Description:
    """One sentence stating the scene's groups, positions and background."""
    swap = None
    if rng.random() < noise:
        spec, swap = _swap(rng, spec)
    bg = rng.choice(BACKGROUND_WORDS[spec.background])
    with_verb = rng.random() < 0.5
    parts = []
    for g in spec.groups:
        where = rng.choice(POSITION_WORDS[g.position])
        if with_verb:
            singular, plural = rng.choice(VERBS)
            parts.append(f"{_noun_phrase(rng, g)} {singular if g.count == 1 else plural} {where}")
        else:
            parts.append(f"{_noun_phrase(rng, g)} {where}")
    scene = " and ".join(parts)
    if with_verb:
        frame = ONE_GROUP_FRAME if len(parts) == 1 and rng.random() < 0.3 else rng.choice(VERB_FRAMES)
    else:
        frame = rng.choice(NOUN_FRAMES)
    text = frame.format(scene=scene, bg=bg)
    return Description(text[0].upper() + text[1:], swap)


def attributes_of(text: str) -> set[Concept]:
    """The (colour, kind) pairs a text states: a colour word right before a shape word."""
    words = _WORD.findall(text.lower())
    return {(words[i - 1], _KIND_OF_WORD[w]) for i, w in enumerate(words)
            if i and w in _KIND_OF_WORD and words[i - 1] in COLOURS}


@dataclass(frozen=True)
class StatedScene:
    """What one description states: each group as (count, size or None when left unsaid,
    colour, kind, position), and the background."""
    groups: frozenset[tuple[int, str | None, str, str, str | None]]
    background: str | None


_COUNT_OF_WORD = {"a": 1, "an": 1, "one": 1, **{w: n for n, w in COUNT_WORDS.items()}}
_SIZE_OF_WORD = {w: size for size, words in SIZE_WORDS.items() for w in words}
_POSITION_OF_WORD = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "centre": "centre",
                     "middle": "centre"}
_BACKGROUND_OF_WORD = {w: bg for bg, words in BACKGROUND_WORDS.items() for w in words}


def stated_scene(text: str) -> StatedScene | None:
    """The scene a sentence written like `describe`'s states, or None for a sentence naming
    no coloured shape (other prose). The inverse of `describe`, for measuring against the
    truth whether two sentences describe the same scene."""
    words = _WORD.findall(text.lower())
    groups = []
    for i, w in enumerate(words):
        if not (i and w in _KIND_OF_WORD and words[i - 1] in COLOURS):
            continue
        before = words[max(0, i - 3):i - 1]
        size = next((_SIZE_OF_WORD[b] for b in before if b in _SIZE_OF_WORD), None)
        count = next((_COUNT_OF_WORD[b] for b in reversed(before) if b in _COUNT_OF_WORD), 1)
        position = next((_POSITION_OF_WORD[a] for a in words[i + 1:] if a in _POSITION_OF_WORD), None)
        groups.append((count, size, words[i - 1], _KIND_OF_WORD[w], position))
    if not groups:
        return None
    background = next((_BACKGROUND_OF_WORD[words[j - 1]] for j, w in enumerate(words)
                       if w == "background" and j and words[j - 1] in _BACKGROUND_OF_WORD), None)
    return StatedScene(frozenset(groups), background)


def same_scene(a: StatedScene, b: StatedScene) -> bool:
    """Whether two descriptions state the same scene: the same groups (count, colour, kind,
    position) and background; a size counts only where both sentences state it."""
    if a.background != b.background or len(a.groups) != len(b.groups):
        return False
    rest = list(b.groups)
    for count, size, colour, kind, position in sorted(a.groups, key=str):
        match = next((g for g in rest if g[0] == count and g[2:] == (colour, kind, position)
                      and (size is None or g[1] is None or g[1] == size)), None)
        if match is None:
            return False
        rest.remove(match)
    return True


def class_name(kind: str, colour: str) -> str:
    return f"{colour}_{kind}"


def class_prompts(kind: str, colour: str) -> list[str]:
    return [f.format(a=article(colour), colour=colour, kind=kind) for f in PROMPT_FRAMES]


def distractor_sentence(rng: random.Random) -> str:
    """A sentence about weather, cooking, sport or the town: never about a picture."""
    subjects, verbs, objects, tails = DISTRACTOR_TOPICS[rng.choice(sorted(DISTRACTOR_TOPICS))]
    s = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)}."
    return s[0].upper() + s[1:]

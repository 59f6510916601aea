"""Zero-shot evaluation of a CLIP encoder on an ImageFolder-style folder.

The folder holds one sub-folder of images per class; `classes.json` beside them may give
each class its prompts ({folder: [prompt, ...]}), otherwise the folder name is the class
("red_circle" -> "a photo of a red circle."). A user's own folders work the same way as the
world's held-out set (jobs/world/corpus.py).

Reported: zero-shot accuracy (each image's closest class text is its class), its mean per
class (so rare classes count as much as common ones), and retrieval recall@1 both ways:
image->text is the accuracy above, text->image is the share of classes whose closest image
belongs to them. Where every class name has the same number (two or more) of
`_`-separated parts, as the world's `colour_kind` classes do, also the share of images whose
predicted class has the right part at each position (`part_1_acc`: the colour,
`part_2_acc`: the shape), so a model that sees colour but not shape shows it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class LabelledImages:
    paths: list[str]
    labels: np.ndarray          # index into classes
    classes: list[str]
    prompts: list[list[str]]    # per class


def default_prompts(folder: str) -> list[str]:
    return [f"a photo of a {folder.replace('_', ' ')}."]


def read_image_folder(root: str) -> LabelledImages:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder (an ImageFolder: one sub-folder of images per class)")
    given: dict[str, list[str]] = {}
    if os.path.exists(os.path.join(root, "classes.json")):
        with open(os.path.join(root, "classes.json")) as fh:
            given = json.load(fh)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    paths, labels = [], []
    for i, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, name))):
            if f.lower().endswith(IMAGE_SUFFIXES):
                paths.append(os.path.join(root, name, f))
                labels.append(i)
    if not paths:
        raise ValueError(f"{root}: no images in any class folder")
    prompts = [list(given.get(name) or default_prompts(name)) for name in classes]
    return LabelledImages(paths, np.array(labels), classes, prompts)


def class_vectors(encode_texts, prompts: list[list[str]]) -> np.ndarray:
    """One unit vector per class: the mean of its prompts' text vectors (CLIP's prompt ensemble)."""
    out = []
    for options in prompts:
        v = encode_texts(options).mean(axis=0)
        out.append(v / max(float(np.linalg.norm(v)), 1e-12))
    return np.stack(out).astype(np.float32)


def scores(image_vectors: np.ndarray, labels: np.ndarray, class_vecs: np.ndarray) -> dict[str, float]:
    sims = image_vectors @ class_vecs.T
    hit = sims.argmax(axis=1) == labels
    per_class = [float(hit[labels == c].mean()) for c in range(len(class_vecs)) if (labels == c).any()]
    t2i = [labels[int(sims[:, c].argmax())] == c for c in range(len(class_vecs)) if (labels == c).any()]
    return {"zero_shot_acc": float(hit.mean()), "zero_shot_mean_class_acc": float(np.mean(per_class)),
            "i2t_recall_at_1": float(hit.mean()), "t2i_recall_at_1": float(np.mean(t2i))}


def part_accuracies(predicted: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """{part_<i>_acc: share of images whose predicted class has the true class's i-th part}
    when every class name has the same number (>= 2) of `_`-separated parts; else {}."""
    parts = [c.split("_") for c in classes]
    if len({len(p) for p in parts}) != 1 or len(parts[0]) < 2:
        return {}
    return {f"part_{i + 1}_acc": float(np.mean([parts[p][i] == parts[t][i] for p, t in zip(predicted, labels)]))
            for i in range(len(parts[0]))}


def evaluate_encoder(encoder, data: LabelledImages, batch: int = 128) -> tuple[dict[str, float], np.ndarray]:
    """(scores, per-image hit vector) of an `Encoder` (udfs/clip_encoder.py) on the folder."""
    from PIL import Image
    vecs = []
    for i in range(0, len(data.paths), batch):
        images = []
        for p in data.paths[i:i + batch]:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        vecs.append(encoder.encode_images(images))
    image_vectors = np.concatenate(vecs)
    class_vecs = class_vectors(encoder.encode_texts, data.prompts)
    predicted = (image_vectors @ class_vecs.T).argmax(axis=1)
    return ({**scores(image_vectors, data.labels, class_vecs), **part_accuracies(predicted, data.labels, data.classes)},
            predicted == data.labels)

"""`realsyn train` / `realsyn evaluate`: a student CLIP trained on an export, scored zero-shot.

The student is the pipeline's tiny CLIP from its random initialisation, trained with
open_clip's loss (jobs/training/clip_training.py) on the export's WebDataset shards
(`export/webdataset/*.tar`: KEY.jpg, KEY.txt = text1, KEY.json with text2, text3,
syn_text and min_cap). Each step draws one text per sample at random from the chosen
sources (the paper trains on {text1, text2, text3, syn_text}); a subset is the rows with
0 <= min_cap <= cap. Evaluation is zero-shot on any ImageFolder-style folder
(jobs/training/zero_shot.py). Both log to MLflow: settings, scores, the loss curve.
"""
from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

from realsyn.jobs.training.clip_training import TrainSpec, preprocess_all, save_weights, train_contrastive
from realsyn.jobs.training.zero_shot import evaluate_encoder, read_image_folder
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec

TEXT_SOURCES = ("text1", "text2", "text3", "syn_text")
WEIGHTS_FILE = os.path.join("clip", "student.safetensors")
REPORT_FILE = "student.json"


@dataclass(frozen=True)
class ExportSample:
    key: str
    url: str                # raw_image_url
    image: object           # PIL image
    texts: dict[str, str]   # source -> text ("" where the row has none)
    min_cap: int


def parse_sources(text: str) -> tuple[str, ...]:
    sources = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in sources if s not in TEXT_SOURCES]
    if unknown or not sources:
        raise ValueError(f"--texts: choose from {', '.join(TEXT_SOURCES)} (got {text!r})")
    return sources


def shard_paths(export_dir: str) -> list[str]:
    """The WebDataset shards of an export folder (or of a folder of shards)."""
    for folder in (os.path.join(export_dir, "webdataset"), export_dir):
        found = sorted(glob.glob(os.path.join(folder, "*.tar")))
        if found:
            return found
    raise FileNotFoundError(f"{export_dir}: no WebDataset shards (*.tar, or webdataset/*.tar); "
                            "run the export stage with export.webdataset=true")


def read_export(export_dir: str, cap: int | None = None) -> list[ExportSample]:
    """Every sample of the shards, or of the subset of cap `cap`, in key order."""
    import webdataset as wds
    out = []
    for key, image, text1, meta in (wds.WebDataset(shard_paths(export_dir), shardshuffle=False, empty_check=False)
                                    .decode("pil").to_tuple("__key__", "jpg", "txt", "json")):
        min_cap = int(meta.get("min_cap", -1))
        if cap is not None and not 0 <= min_cap <= cap:
            continue
        texts = {"text1": text1 or "", **{s: meta.get(s) or "" for s in TEXT_SOURCES[1:]}}
        out.append(ExportSample(key, meta.get("url") or "", image.convert("RGB"), texts, min_cap))
    return sorted(out, key=lambda s: s.key)


def candidate_texts(samples: list[ExportSample], sources: tuple[str, ...]) -> tuple[list[ExportSample], list[list[str]]]:
    """(samples with at least one text among the sources, their candidate texts)."""
    kept, texts = [], []
    for s in samples:
        options = [s.texts[src] for src in sources if s.texts.get(src)]
        if options:
            kept.append(s)
            texts.append(options)
    return kept, texts


def train_student(export_dir: str, out_dir: str, spec: TrainSpec, sources: tuple[str, ...] = TEXT_SOURCES,
                  cap: int | None = None, eval_dir: str | None = None, threads: int = 2,
                  log: Callable[[str], None] = print, tracker=None) -> dict:
    """Train a student from scratch on the export; save it and its report under out_dir."""
    samples, texts = candidate_texts(read_export(export_dir, cap), sources)
    if not samples:
        raise ValueError(f"{export_dir}: no sample with a text among {', '.join(sources)}"
                         + (f" in the subset of cap {cap}" if cap is not None else ""))
    encoder = Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=spec.seed, threads=threads, mixed_precision=False))
    log(f"student: {len(samples)} pairs from {export_dir} (texts {', '.join(sources)}"
        + (f", cap {cap})" if cap is not None else ")"))
    started = time.time()
    losses = train_contrastive(encoder, preprocess_all(encoder, [s.image for s in samples]), texts, spec, log)
    seconds = time.time() - started
    os.makedirs(os.path.join(out_dir, "clip"), exist_ok=True)
    save_weights(encoder, os.path.join(out_dir, WEIGHTS_FILE))
    report: dict = {"export": os.path.abspath(export_dir), "pairs": len(samples), "sources": list(sources),
                    "cap": cap, "train": asdict(spec), "seconds": round(seconds, 1),
                    "first_loss": losses[0], "last_loss": sum(losses[-20:]) / len(losses[-20:])}
    if eval_dir:
        report["eval"] = evaluate_folder(encoder, eval_dir)
    with open(os.path.join(out_dir, REPORT_FILE), "w") as fh:
        json.dump(report, fh, indent=1)
    if tracker is not None:
        log_run(tracker, report, losses, out_dir)
    return report


def evaluate_folder(encoder: Encoder, eval_dir: str) -> dict:
    data = read_image_folder(eval_dir)
    scores, hits = evaluate_encoder(encoder, data)
    per_class = {c: float(hits[data.labels == i].mean()) for i, c in enumerate(data.classes)
                 if (data.labels == i).any()}
    return {"folder": os.path.abspath(eval_dir), "images": len(data.paths), "classes": len(data.classes),
            **scores, "per_class": per_class}


def evaluate_weights(weights: str, eval_dir: str, seed: int = 0, threads: int = 2) -> dict:
    """Zero-shot scores of saved tiny-CLIP weights (a .safetensors file or a folder with one)."""
    return evaluate_folder(Encoder(EncoderSpec(arch="tiny", pretrained="", weights=weights, seed=seed, threads=threads, mixed_precision=False)), eval_dir)


def log_run(tracker, report: dict, losses: list[float], out_dir: str) -> None:
    """Settings as params, scores as metrics, the loss per step and its plot as artifacts."""
    tracker.params({"export": report["export"], "pairs": report["pairs"], "sources": ",".join(report["sources"]),
                    "cap": report["cap"], **{f"train.{k}": v for k, v in report["train"].items()}})
    scores = {k: v for k, v in report.get("eval", {}).items() if isinstance(v, float)}
    tracker.metrics({"last_loss": report["last_loss"], "train_seconds": report["seconds"], **scores})
    tracker.dict(report, "student.json")
    tracker.artifact(loss_curve_png(os.path.join(out_dir, "loss.png"), losses), "student")


def loss_curve_png(path: str, losses: list[float]) -> str:
    from realsyn.udfs.dataset_card import pyplot, save_png
    fig, ax = pyplot().subplots(figsize=(7, 4))
    ax.plot(range(1, len(losses) + 1), losses, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title("student training loss")
    return save_png(fig, path)

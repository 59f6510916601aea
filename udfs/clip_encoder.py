"""open_clip image and text encoders for executors: loaded once per Python worker.

Presets: a named open_clip architecture with a pretrained tag (`base`, `paper`), or
`tiny`, a small CLIP built from config with a fixed seed. Any preset can load weights
from a local .safetensors file (or a folder holding one) instead; weights never go
through pickle. Vectors are L2-normalised float32 (stored as float32 or float16 bytes).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from realsyn.udfs import declared as d
from realsyn.udfs.locations import Location
from realsyn.udfs.task_device import assigned_gpu

import numpy as np

# 8-pixel patches: at 64 px the world's shapes are 10-16 px across, and 16-pixel patches left
# the teacher CLIP near chance on colour as well as shape (docs/decisions.md, "A stronger teacher").
TINY: dict[str, Any] = dict(embed_dim=64, vision_cfg=dict(layers=2, width=64, head_width=32, patch_size=8, image_size=64),
            text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2))


@dataclass(frozen=True, kw_only=True)
class EncoderSpec:
    """The CLIP encoder (embed, balance and generate share the preset's one)."""
    SECTION = "embedding"
    arch: str = d.preset("clip")                  # "tiny" or an open_clip model name
    pretrained: str = d.preset("clip_pretrained")   # open_clip pretrained tag, "" for none
    weights: Location = d.weights("clip")   # local .safetensors file or folder, "" for none (identified by content)
    seed: int = d.setting("run.seed")
    threads: int = d.setting("models.torch_threads")
    mixed_precision: bool | str   # GPU autocast: True or "float16", "bfloat16", False (float32)


class Encoder:
    def __init__(self, spec: EncoderSpec):
        import open_clip
        import torch
        self.torch = torch
        self.spec = spec
        torch.set_num_threads(spec.threads)
        self.device = pick_device()
        if spec.arch == "tiny":
            from open_clip.model import CLIP
            torch.manual_seed(spec.seed)
            model = CLIP(**TINY)
            size, ctx = TINY["vision_cfg"]["image_size"], TINY["text_cfg"]["context_length"]
            self.tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=ctx)
        else:
            torch.manual_seed(spec.seed)
            pretrained = None if spec.weights else (spec.pretrained or None)
            model = open_clip.create_model(spec.arch, pretrained=pretrained)
            size, _ = clip_geometry(model, spec.arch)
            self.tokenizer = open_clip.get_tokenizer(spec.arch)
        weights_id = ""
        if spec.weights:
            weights_id = load_safetensors(model, spec.weights)
        self.model_id = model_identity(spec, weights_id)
        self.preprocess = open_clip.transform.image_transform(size, is_train=False)
        self.image_size = size
        mean, std = open_clip.constants.OPENAI_DATASET_MEAN, open_clip.constants.OPENAI_DATASET_STD
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.model = model.to(self.device).eval()
        self.dim = int(TINY["embed_dim"] if spec.arch == "tiny" else clip_geometry(model, spec.arch)[1])

    def _autocast(self):
        torch = self.torch
        if self.device.startswith("cuda") and self.spec.mixed_precision:
            half = torch.bfloat16 if self.spec.mixed_precision == "bfloat16" else torch.float16
            return torch.autocast("cuda", dtype=half)
        return torch.autocast("cpu", enabled=False)

    def preprocess_batch(self, images: list):
        """The same pixels as `self.preprocess` per image (resize shorter side, bicubic with
        antialias, centre crop, /255, normalise), but the tensor steps run once per batch:
        only the PIL resize and crop stay per image."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF
        torch, size = self.torch, self.image_size
        arrays = []
        for im in images:
            im = TF.center_crop(TF.resize(im, size, interpolation=InterpolationMode.BICUBIC, antialias=True),
                                [size, size])
            arrays.append(np.asarray(im.convert("RGB") if im.mode != "RGB" else im))
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(torch.float32).div(255)
        return batch.sub_(self._mean).div_(self._std).contiguous()

    def encode_images(self, images: list, rows: int | None = None) -> np.ndarray:
        """rows: encode in batches of exactly this many (see `_fixed_batches`)."""
        def run(part: list) -> np.ndarray:
            batch = self.preprocess_batch(part).to(self.device)
            with self.torch.inference_mode(), self._autocast():
                return self.model.encode_image(batch).float().cpu().numpy()
        return normalise(_fixed_batches(run, images, rows, lambda: _blank(self.image_size)))

    def encode_texts(self, texts: list[str], rows: int | None = None) -> np.ndarray:
        """rows: encode in batches of exactly this many (see `_fixed_batches`)."""
        def run(part: list) -> np.ndarray:
            tokens = self.tokenizer(part).to(self.device)
            with self.torch.inference_mode(), self._autocast():
                return self.model.encode_text(tokens).float().cpu().numpy()
        return normalise(_fixed_batches(run, texts, rows, lambda: ""))


def _fixed_batches(run, items: list, rows: int | None, filler) -> np.ndarray:
    """`run` over batches of exactly `rows` items, the last filled up with `filler()`, and
    the filler's rows dropped. A batch's shape picks the kernels (a batch of 1 or 5 rounds
    differently from one of 64), so a vector would otherwise depend on how many rows shared
    its batch, and so on where a unit or partition ended: a resumed run would not equal a
    clean one bit for bit. rows None: one batch of whatever size."""
    if not rows or len(items) == rows:
        return run(items)
    out = []
    for first in range(0, len(items), rows):
        part = list(items[first:first + rows])
        out.append(run(part + [filler() for _ in range(rows - len(part))])[:len(part)])
    return np.concatenate(out) if out else run(items)


def _blank(size: int):
    from PIL import Image
    return Image.new("RGB", (size, size))


def clip_geometry(model, arch: str) -> tuple[int, int]:
    """(input side, embedding dim) of a named open_clip model. The dim is the architecture's
    embed_dim: towers built on timm or HF text models (EVA02, ...) have no text_projection."""
    import open_clip
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return int(size), int(open_clip.get_model_config(arch)["embed_dim"])


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def pick_device() -> str:
    """The GPU Spark assigned to this task, else any CUDA device, else the CPU."""
    import torch
    gpu = assigned_gpu()
    if gpu is not None and torch.cuda.is_available():
        return f"cuda:{gpu}"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_weights(path: str) -> str:
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        if not files:
            raise FileNotFoundError(f"no .safetensors file in {path}")
        if len(files) > 1:   # never pick one silently
            raise ValueError(f"{path} holds {len(files)} .safetensors files ({', '.join(files[:4])}); "
                             "keep one, or point models.weights_dir at a folder whose clip/ holds one")
        return os.path.join(path, files[0])
    if not path.endswith(".safetensors"):
        raise ValueError(f"{path}: only .safetensors weights are loaded (no pickle)")
    return path


def load_safetensors(model, path: str) -> str:
    """Load weights strictly; returns a short hash of the file, recorded with the vectors."""
    from safetensors.torch import load_file
    file = resolve_weights(path)
    model.load_state_dict(load_file(file), strict=True)
    with open(file, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def model_identity(spec: EncoderSpec, weights_id: str) -> str:
    if weights_id:
        return f"{spec.arch}@weights:{weights_id}"
    if spec.arch == "tiny":
        return f"tiny@seed:{spec.seed}"
    return f"{spec.arch}@{spec.pretrained or 'random'}" + ("" if spec.pretrained else f":seed:{spec.seed}")


_ENCODERS: dict[EncoderSpec, Encoder] = {}


def encoder_for(spec: EncoderSpec) -> Encoder:
    """One encoder per Python worker and spec (workers are reused across tasks)."""
    if spec not in _ENCODERS:
        _ENCODERS[spec] = Encoder(spec)
    return _ENCODERS[spec]


def open_image(data: bytes, fit: int | None = None):
    """Stored image bytes -> upright RGB, reduced as opened towards `fit` (the one opener:
    udfs/image_decode.open_rgb)."""
    from realsyn.udfs.image_decode import open_rgb
    return open_rgb(data, fit)

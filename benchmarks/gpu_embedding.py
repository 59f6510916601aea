"""GPU check (optional, not in CI): images/s of the embedding path on CUDA, mixed precision.

Runs the same Encoder the Spark UDF uses, on cuda when present; exits 0 with a note on a
machine without a GPU. Prints `RESULT gpu_images_per_s=... cpu_images_per_s=... gpu_over_cpu=...`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.embedding import make_images  # noqa: E402
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec, open_image  # noqa: E402


def rate(enc: Encoder, blobs, batch: int) -> float:
    images = [open_image(b) for b in blobs]
    enc.encode_images(images[:batch])                    # warm-up (kernels, allocator)
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        enc.encode_images(images[i:i + batch])
    if enc.device.startswith("cuda"):
        enc.torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--arch", default="ViT-B-32")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure")
        print("RESULT gpu_images_per_s=nan cpu_images_per_s=nan gpu_over_cpu=nan")
        return
    blobs = make_images(args.images)
    gpu = Encoder(EncoderSpec(args.arch, "", "", 42, 4, True))
    g = rate(gpu, blobs, args.batch)
    cpu_enc = Encoder(EncoderSpec(args.arch, "", "", 42, 4, False))
    cpu_enc.model = cpu_enc.model.to("cpu")
    cpu_enc.device = "cpu"
    c = rate(cpu_enc, blobs[:200], 32)
    print(f"{args.arch}: cuda {g:.0f} img/s, cpu {c:.1f} img/s ({torch.cuda.get_device_name(0)})")
    print(f"RESULT gpu_images_per_s={g:.1f} cpu_images_per_s={c:.1f} gpu_over_cpu={g / c:.1f}")


if __name__ == "__main__":
    main()

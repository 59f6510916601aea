"""GPU check (optional, never in CI): the embedding UDF body and the centroid search on CUDA,
each checked against the CPU and timed.

1. Embedding: the same `Encoder` the Spark UDF uses (same seed, so the same weights), mixed
   precision on the GPU against float32 on the CPU over the same images; reports images/s of
   both and the lowest cosine between a GPU vector and its CPU twin.
2. Centroid search: the retrieve stage's `nearest_clusters` over one flat level (faiss flat inner product) on the
   CPU against the GPU (faiss's GPU index where faiss has GPU support, else torch on CUDA: the
   same exact product); reports queries/s and the share of queries whose nearest centroid
   agrees (near-ties aside, 1.0).

On a machine without CUDA it prints a note and nan; `--device cpu` runs both sides on the CPU
to check the script itself. Sized to finish within a few minutes on one GPU. Prints
`RESULT gpu_images_per_s=... cpu_images_per_s=... gpu_over_cpu=... embed_min_cosine=...
centroid_top1_agreement=... gpu_centroid_queries_per_s=... cpu_centroid_queries_per_s=...`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.embedding import make_images  # noqa: E402
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec, open_image  # noqa: E402
from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters  # noqa: E402
from realsyn.udfs.vector_search import faiss_module  # noqa: E402


def encoder_on(arch: str, device: str, mixed_precision: bool, threads: int) -> Encoder:
    enc = Encoder(EncoderSpec(arch, "", "", 42, threads, mixed_precision))
    enc.model, enc.device = enc.model.to(device), device
    return enc


def embed_all(enc: Encoder, images, batch: int) -> tuple[np.ndarray, float]:
    enc.encode_images(images[:batch])                    # warm-up (kernels, allocator)
    if enc.device.startswith("cuda"):
        enc.torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = np.concatenate([enc.encode_images(images[i:i + batch]) for i in range(0, len(images), batch)])
    if enc.device.startswith("cuda"):
        enc.torch.cuda.synchronize()
    return out, len(images) / (time.perf_counter() - t0)


def gpu_nearest(queries: np.ndarray, centroids: np.ndarray, device: str) -> tuple[np.ndarray, str]:
    """Nearest centroid of each query on the device: faiss's GPU index when this faiss has one,
    else the same exact inner product in torch."""
    faiss = faiss_module(1)
    if device.startswith("cuda") and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, faiss.IndexFlatIP(centroids.shape[1]))
        index.add(centroids)
        return index.search(queries, 1)[1][:, 0], "faiss-gpu"
    import torch
    c = torch.from_numpy(centroids).to(device)
    ids = [torch.argmax(torch.from_numpy(queries[i:i + 8192]).to(device) @ c.T, dim=1).cpu()
           for i in range(0, len(queries), 8192)]
    return torch.cat(ids).numpy(), "torch"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--cpu-images", type=int, default=200, help="images also encoded on the CPU")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--centroids", type=int, default=200_000, help="K of the centroid search")
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu to check the script itself")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure")
        print("RESULT gpu_images_per_s=nan cpu_images_per_s=nan gpu_over_cpu=nan embed_min_cosine=nan "
              "centroid_top1_agreement=nan gpu_centroid_queries_per_s=nan cpu_centroid_queries_per_s=nan")
        return
    threads = torch.get_num_threads()
    images = [open_image(b) for b in make_images(args.images)]
    gpu_vecs, g = embed_all(encoder_on(args.arch, args.device, True, threads), images, args.batch)
    cpu_vecs, c = embed_all(encoder_on(args.arch, "cpu", False, threads), images[:args.cpu_images], 32)
    min_cos = float(np.min(np.sum(gpu_vecs[:len(cpu_vecs)] * cpu_vecs, axis=1)))

    rng = np.random.default_rng(0)
    d = gpu_vecs.shape[1]
    centroids = rng.standard_normal((args.centroids, d)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    # Queries near real embeddings: the GPU vectors, jittered, so the search sees CLIP geometry.
    queries = gpu_vecs[rng.integers(0, len(gpu_vecs), args.queries)] \
        + rng.standard_normal((args.queries, d)).astype(np.float32) * 0.05
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    blob = centroids.astype("<f4").tobytes()
    (_, cpu_ids), cpu_s = timed(lambda: nearest_clusters(queries, CentroidLevels.flat(blob, d), 1))
    gpu_nearest(queries[:1024], centroids, args.device)       # warm-up
    (gpu_ids, how), gpu_s = timed(lambda: gpu_nearest(queries, centroids, args.device))
    agree = float(np.mean(gpu_ids == cpu_ids[:, 0]))

    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"{args.arch} on {name}: {args.device} {g:.0f} img/s (mixed precision), cpu {c:.1f} img/s; "
          f"lowest cosine to the CPU vector {min_cos:.5f}")
    print(f"centroid search K={args.centroids:,} d={d} over {args.queries:,} queries ({how}): "
          f"{args.queries / gpu_s:.0f} q/s, cpu faiss (one thread, as in a task) {args.queries / cpu_s:.0f} q/s; top-1 agreement {agree:.4f}")
    print(f"RESULT gpu_images_per_s={g:.1f} cpu_images_per_s={c:.1f} gpu_over_cpu={g / c:.1f} "
          f"embed_min_cosine={min_cos:.5f} centroid_top1_agreement={agree:.4f} "
          f"gpu_centroid_queries_per_s={args.queries / gpu_s:.0f} cpu_centroid_queries_per_s={args.queries / cpu_s:.0f}")


if __name__ == "__main__":
    main()

"""GPU check: the stages' executor bodies on CUDA, each checked against the CPU and timed.

Runs without Spark or Java (a GPU machine with PyTorch and transformers; open_clip, and faiss
where its wheel fits, carried as wheels: docs/gpu.md).
1. embed: the embedding UDF's `Encoder` (ViT-B-32 at random init, seeded, so the same
   weights on both sides) under float16 and bfloat16 autocast against float32 on the CPU:
   images/s, the lowest cosine between a GPU vector and its CPU twin.
2. generate: the generate UDF's `Generators` (BLIP-base captioner and a Qwen2.5-0.5B-shaped
   LLM: the real classes at random init, jobs/checks/preset_models.py), batched as the stage
   batches, against the same models on the CPU: the share of identical captions and
   fusion outputs under greedy decoding, images/s and generated tokens/s.
3. centroid search: retrieve's `nearest_clusters` on the CPU (faiss, one thread as in a task)
   against the GPU (faiss's GPU index where faiss has one, else the same product in torch).
For 1 and 2 it reports the share of the body's wall time spent preparing inputs on the CPU
(decode, resize, processor) against the model. `--device cpu` runs every part on the CPU
with small sizes and 2-layer models, to check the script itself (the default suite does).
Prints one RESULT line.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def import_realsyn() -> None:
    """The package is the repository root: where it is not installed (the GPU machine gets a
    copy of the tree), a link named realsyn in a temporary folder makes it importable."""
    try:
        import realsyn  # noqa: F401
    except ImportError:
        shim = Path(tempfile.mkdtemp(prefix="realsyn-path-"))
        (shim / "realsyn").symlink_to(ROOT, target_is_directory=True)
        sys.path.insert(0, str(shim))
    sys.path.insert(0, str(ROOT))


import_realsyn()

from realsyn.jobs.checks import preset_models as pm  # noqa: E402
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec, open_image  # noqa: E402
from realsyn.udfs.generation_models import GenSpec, Generators  # noqa: E402

CAPTIONER, LLM = "Salesforce/blip-image-captioning-base", "Qwen/Qwen2.5-0.5B-Instruct"
PROMPT = ("Merge the raw text and the image caption into one fluent description of the image.\n"
          "Raw text: {raw}\nCaption: {caption}\nTags: {tags}")


def make_images(n: int, seed: int = 0) -> list[bytes]:
    """JPEGs of web sizes (noise compresses badly, so these are the heavy end)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = rng.integers(240, 640, 2)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def encoder_on(device: str, precision, threads: int) -> Encoder:
    enc = Encoder(EncoderSpec(arch="ViT-B-32", pretrained="", weights="", seed=42, threads=threads, mixed_precision=precision))
    enc.model, enc.device = enc.model.to(device), device
    return enc


def embed_side(enc: Encoder, blobs: list[bytes], batch: int) -> dict:
    """The embedding body's steps over all images: decode (as opened, towards the input side),
    then encode_images per batch; preprocess_batch timed alone for the CPU share."""
    images, decode_s = timed(lambda: [open_image(b, enc.image_size) for b in blobs])
    enc.encode_images(images[:batch])                      # warm-up (kernels, allocator)
    sync(enc.device)
    _, prep_s = timed(lambda: [enc.preprocess_batch(images[i:i + batch]) for i in range(0, len(images), batch)])

    def encode():
        out = np.concatenate([enc.encode_images(images[i:i + batch]) for i in range(0, len(images), batch)])
        sync(enc.device)
        return out
    vecs, encode_s = timed(encode)
    return {"vecs": vecs, "per_s": len(images) / (decode_s + encode_s),
            "cpu_share": (decode_s + prep_s) / (decode_s + encode_s)}


def generators_on(spec: GenSpec, device: str) -> Generators:
    gen = Generators(spec)
    if gen.device != device:
        gen.cap_model, gen.llm = gen.cap_model.to(device), gen.llm.to(device)
        gen.device = gen.fusion.device = device
    return gen


def generate_side(gen: Generators, blobs: list[bytes], batch: int) -> dict:
    """The generate body's steps per batch: decode, caption (processor + model), fuse."""
    captions, fused, decode_s, proc_s, model_s, tokens = [], [], 0.0, 0.0, 0.0, 0
    gen.fuse([PROMPT.format(raw="warm", caption=c, tags="") for c in gen.caption([open_image(blobs[0])])])
    for i in range(0, len(blobs), batch):
        images, s = timed(lambda: [open_image(b, gen.image_side) for b in blobs[i:i + batch]])
        decode_s += s
        _, s = timed(lambda: gen.cap_processor(images=images, return_tensors="pt"))
        proc_s += s
        before = gen.fusion.generated_tokens
        caps, cap_s = timed(lambda: gen.caption(images))
        prompts = [PROMPT.format(raw="a red cube on a table", caption=c, tags="cube, red") for c in caps]
        outs, fuse_s = timed(lambda: gen.fuse(prompts))
        sync(gen.device)
        model_s += cap_s + fuse_s
        tokens += gen.fusion.generated_tokens - before
        captions += caps
        fused += outs
    total = decode_s + model_s
    return {"captions": captions, "fused": fused, "per_s": len(blobs) / total, "tokens_per_s": tokens / model_s,
            "cpu_share": (decode_s + proc_s) / total}


def centroid_side(queries: np.ndarray, centroids: np.ndarray, device: str) -> dict:
    """Nearest centroid of each query: faiss on the CPU where installed (else numpy's exact
    product), and on the device faiss's GPU index or torch."""
    import torch
    try:
        from realsyn.udfs.centroid_levels import CentroidLevels, nearest_clusters
        blob = centroids.astype("<f4").tobytes()
        levels = CentroidLevels.flat(blob, centroids.shape[1])
        (_, cpu_ids), cpu_s = timed(lambda: nearest_clusters(queries, levels, 1))
        cpu_ids, how_cpu = cpu_ids[:, 0], "faiss"
    except ImportError:
        cpu_ids, cpu_s = timed(lambda: np.argmax(queries @ centroids.T, axis=1))
        how_cpu = "numpy"
    faiss = None
    try:
        import faiss
    except ImportError:
        pass

    def on_device():
        if faiss is not None and device.startswith("cuda") and hasattr(faiss, "StandardGpuResources") \
                and faiss.get_num_gpus() > 0:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, faiss.IndexFlatIP(centroids.shape[1]))
            index.add(centroids)
            return index.search(queries, 1)[1][:, 0], "faiss-gpu"
        c = torch.from_numpy(centroids).to(device)
        ids = [torch.argmax(torch.from_numpy(queries[i:i + 8192]).to(device) @ c.T, dim=1).cpu()
               for i in range(0, len(queries), 8192)]
        return torch.cat(ids).numpy(), "torch"
    on_device()                                             # warm-up
    (dev_ids, how), dev_s = timed(on_device)
    return {"agree": float(np.mean(dev_ids == cpu_ids)), "dev_qps": len(queries) / dev_s,
            "cpu_qps": len(queries) / cpu_s, "how": f"{how} vs {how_cpu}"}


def missing_modules() -> list[str]:
    import importlib.util
    return [m for m in ("torch", "torchvision", "transformers", "open_clip", "timm", "ftfy", "PIL")
            if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> int:
    missing = missing_modules()
    if missing:
        print(f"missing Python packages: {', '.join(missing)} (docs/gpu.md: make gpu-wheels, carried with the tree)")
        return 2
    import torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, or cpu to check the script itself")
    ap.add_argument("--images", type=int, default=None, help="images embedded on the device")
    ap.add_argument("--cpu-images", type=int, default=None, help="of those, also embedded on the CPU")
    ap.add_argument("--gen-images", type=int, default=None, help="images captioned and fused on the device")
    ap.add_argument("--cpu-gen-images", type=int, default=None, help="of those, also on the CPU")
    args = ap.parse_args(argv)
    small = args.device == "cpu"
    n_img = args.images or (8 if small else 2000)
    n_cpu = args.cpu_images or (4 if small else 200)
    n_gen = args.gen_images or (2 if small else 64)
    n_cpu_gen = args.cpu_gen_images or (2 if small else 16)
    layers = 2 if small else None                       # full depth on the GPU
    caption_tokens, llm_tokens, k, n_q = (4, 4, 1000, 200) if small else (30, 96, 200_000, 50_000)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (--device cpu checks the script)")
        print("RESULT device=none")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False       # the CPU comparison wants float32 products
    torch.backends.cudnn.allow_tf32 = False
    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    started = time.perf_counter()

    blobs = make_images(n_img)
    cpu = embed_side(encoder_on("cpu", False, threads), blobs[:n_cpu], 32)
    emb = {}
    for precision in ("float16", "bfloat16"):
        side = embed_side(encoder_on(args.device, precision, threads), blobs, 256)
        side["min_cos"] = float(np.min(np.sum(side["vecs"][:n_cpu] * cpu["vecs"], axis=1)))
        emb[precision] = side
        print(f"embed ViT-B-32 {precision} on {name}: {side['per_s']:.0f} img/s (CPU prep share "
              f"{side['cpu_share']:.2f}), lowest cosine to float32 CPU {side['min_cos']:.5f}")
    print(f"embed on the CPU, float32: {cpu['per_s']:.1f} img/s (prep share {cpu['cpu_share']:.2f})")

    with tempfile.TemporaryDirectory() as folder:
        texts = pm.corpus(["a red cube on a table", "a blue ball in a park", "two dogs near the river"])
        (cap_dir, llm_dir), build_s = timed(lambda: (pm.write_role("captioner", CAPTIONER, folder, texts, 0, layers),
                                                     pm.write_role("llm", LLM, folder, texts, 0, layers)))
        spec = GenSpec(captioner=CAPTIONER, llm=LLM, captioner_dir=cap_dir, llm_dir=llm_dir, seed=0, caption_max_new_tokens=caption_tokens, caption_num_beams=1, llm_max_new_tokens=llm_tokens, threads=threads, engine="transformers")
        gen_blobs = make_images(n_gen, seed=1)
        dev = generate_side(generators_on(spec, args.device), gen_blobs, 8)
        ref = generate_side(generators_on(spec, "cpu"), gen_blobs[:n_cpu_gen], 8)
    same_cap = float(np.mean([a == b for a, b in zip(dev["captions"], ref["captions"])]))
    same_fuse = float(np.mean([a == b for a, b in zip(dev["fused"], ref["fused"])]))
    print(f"generate BLIP-base + Qwen2.5-0.5B shape{' (2 layers)' if layers else ''} on {name}, float32, batch 8 "
          f"(built in {build_s:.0f} s): {dev['per_s']:.2f} img/s, {dev['tokens_per_s']:.0f} fusion tokens/s, CPU prep "
          f"share {dev['cpu_share']:.2f}; the CPU: {ref['per_s']:.2f} img/s, {ref['tokens_per_s']:.0f} tokens/s; "
          f"same captions {same_cap:.3f}, same fusions {same_fuse:.3f}")

    rng = np.random.default_rng(0)
    vecs = emb["float16"]["vecs"]
    centroids = rng.standard_normal((k, vecs.shape[1])).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    # Queries near real embeddings (the GPU vectors, jittered), so the search sees CLIP geometry.
    queries = vecs[rng.integers(0, len(vecs), n_q)] + rng.standard_normal((n_q, vecs.shape[1])).astype(np.float32) * 0.05
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    search = centroid_side(queries, centroids, args.device)
    print(f"centroid search K={k:,} over {n_q:,} queries ({search['how']}): {search['dev_qps']:.0f} q/s on {name}, "
          f"{search['cpu_qps']:.0f} q/s on one CPU thread; top-1 agreement {search['agree']:.4f}")
    print(f"total {time.perf_counter() - started:.0f} s")
    f16, b16 = emb["float16"], emb["bfloat16"]
    print(f"RESULT device={name.replace(' ', '_')} gpu_images_per_s_fp16={f16['per_s']:.1f} "
          f"gpu_images_per_s_bf16={b16['per_s']:.1f} cpu_images_per_s={cpu['per_s']:.1f} "
          f"embed_min_cosine_fp16={f16['min_cos']:.5f} embed_min_cosine_bf16={b16['min_cos']:.5f} "
          f"embed_cpu_prep_share={f16['cpu_share']:.3f} gen_images_per_s={dev['per_s']:.2f} "
          f"gen_tokens_per_s={dev['tokens_per_s']:.0f} cpu_gen_tokens_per_s={ref['tokens_per_s']:.0f} "
          f"same_captions={same_cap:.3f} same_fusions={same_fuse:.3f} gen_cpu_prep_share={dev['cpu_share']:.3f} "
          f"centroid_top1_agreement={search['agree']:.4f} gpu_centroid_queries_per_s={search['dev_qps']:.0f} "
          f"cpu_centroid_queries_per_s={search['cpu_qps']:.0f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

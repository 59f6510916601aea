"""Paper-scale cost projection (docs/scale.md): CPU core-hours and, per model preset, GPU-hours
to run the paper's funnel (118M documents, 336M images, 2.13B sentences, K = 2M clusters).

- Model stages: FLOPs per item counted by torch's FlopCounterMode while the real open_clip /
  transformers model code runs on weightless tensors (meta or fake: nothing is computed or
  downloaded), for the architectures the presets name. GPU-hours at `--gpu-tflops` x `--mfu`.
- Searches (k-means fits and assignments, coarse and fine retrieval, brute force): exact
  inner-product search costs 2 * d * queries * centroids FLOPs. GPU-hours at the same rate
  (faiss GPU as fp16 GEMM); CPU core-hours at the rate faiss's flat search measures here on
  core, at the preset's dimension.
- Stages without a model: per-row rates measured by the other benchmarks on this machine
  (the options below, defaulting to the values in README / docs/scale.md).

Prints one table per preset and
`RESULT paper_retrieval_gpu_h=... paper_brute_force_gpu_h=... paper_model_gpu_h=... base_model_gpu_h=... cpu_core_h=...`.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

import numpy as np

# The funnel from the paper (docs/paper.md), rows into each step.
DOCS = 118e6
IMAGES = 336e6              # extracted, quality-filtered
IMAGES_EMBEDDED = 285e6     # after the quality filter: embedded, deduplicated
IMAGES_KEPT = 198e6         # after dedup: retrieved for, captioned, tagged, fused
SENTENCES = 2.13e9          # split, quality-filtered
SENTENCES_PPL = 1.82e9      # after the quality filter: entropy and perplexity
SENTENCES_EMBEDDED = 1.16e9  # after the semantic filters: embedded, deduplicated
SENTENCES_KEPT = 0.84e9     # clustered, searched
CLUSTERS = 2e6
PROBES = 6                  # retrieval.probes (conf/defaults.yaml)
COARSE_PROBES = 3           # retrieval.coarse_probes
COARSE_GROUPS = np.ceil(np.sqrt(CLUSTERS))   # udfs/centroid_levels.py coarse_groups (K >= coarse_min_clusters)
BALANCE_PAIRS = 168.3e6
BALANCE_CLUSTERS = 1e6
DEDUP_POINTS_PER_CLUSTER = 200  # embedding.dedup_points_per_cluster
DEDUP_GROUP_ROWS = 100_000       # embedding.dedup_group_rows
KMEANS_ITERS = 10
KMEANS_POINTS_PER_CENTROID = 10  # a fit sample of 10 points per centroid (20M for K = 2M)

# Token counts per item (assumptions): a 3-81-word sentence is about 25 GPT-2 tokens; a
# caption about 20; a fusion call reads the instruction, R1, the caption and the tags and
# writes one sentence, about 190 tokens in all.
PPL_TOKENS = 25
CAPTION_TOKENS = 20
FUSION_TOKENS = 190
RAM_PLUS_GFLOP = 208.0  # RAM++'s Swin-L image encoder at 384 px (not in open_clip/transformers)
TAG_VOCAB = 8000

# Architectures the presets name (conf/defaults.yaml), from their published configs.
LMS = {
    "gpt2-large": ("gpt2", dict(n_layer=36, n_embd=1280, n_head=20)),
    "gpt2": ("gpt2", dict()),
    "meta-llama/Meta-Llama-3-8B-Instruct": ("llama", dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256)),
    "Qwen/Qwen2.5-0.5B-Instruct": ("qwen2", dict(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)),
}
BLIPS = {
    "Salesforce/blip-image-captioning-large": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        image_size=384, patch_size=16),
    "Salesforce/blip-image-captioning-base": dict(image_size=384),
}
PRESETS = {
    "paper": dict(clip="EVA02-E-14-plus", captioner="Salesforce/blip-image-captioning-large",
                  tagger="ram_plus", llm="meta-llama/Meta-Llama-3-8B-Instruct", ppl_lm="gpt2-large"),
    "base": dict(clip="ViT-B-32", captioner="Salesforce/blip-image-captioning-base",
                 tagger="clip", llm="Qwen/Qwen2.5-0.5B-Instruct", ppl_lm="gpt2"),
}


def counted(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def clip_flops(name: str) -> tuple[float, float, int]:
    """FLOPs of one image and one sentence through open_clip's model, and its embedding width."""
    import open_clip
    import torch
    with torch.device("meta"):  # built on meta, not built on the CPU and then moved
        model = open_clip.create_model(name, pretrained=None, device="meta")
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    image = torch.empty(1, 3, size, size, device="meta")
    text = torch.zeros(1, model.context_length, dtype=torch.long, device="meta")
    return counted(lambda: model.encode_image(image)), counted(lambda: model.encode_text(text)), \
        int(open_clip.get_model_config(name)["embed_dim"])


def lm_flops(name: str, tokens: int) -> float:
    """FLOPs of one forward pass over `tokens` tokens (a prefill costs what a decode with a cache does)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    import transformers
    kind, overrides = LMS[name]
    config = transformers.AutoConfig.for_model(kind, **overrides)
    # fake tensors, not meta: Llama's rotary embedding opens an autocast region by device type
    with FakeTensorMode():
        model = transformers.AutoModelForCausalLM.from_config(config)
        ids = torch.zeros(1, tokens, dtype=torch.long)
        return counted(lambda: model(input_ids=ids))


def captioner_flops(name: str, tokens: int) -> float:
    """FLOPs of BLIP's vision encoder on one image plus its text decoder over `tokens` tokens."""
    import torch
    import transformers
    with torch.device("meta"):
        model = transformers.BlipForConditionalGeneration(
            transformers.BlipConfig(vision_config=BLIPS[name], text_config={}))
        size = BLIPS[name]["image_size"]
        pixels = torch.zeros(1, 3, size, size)
        vision = counted(lambda: model.vision_model(pixel_values=pixels))
        hidden = model.vision_model(pixel_values=pixels)[0]
        ids = torch.zeros(1, tokens, dtype=torch.long)
        mask = torch.ones(1, tokens, dtype=torch.long)
        text = counted(lambda: model.text_decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=hidden))
    return vision + text


def faiss_flops_per_s(dim: int, queries: int = 2000, centroids: int = 50_000) -> float:
    """Exact inner-product search rate of faiss on one thread (one core), FLOP/s."""
    import faiss
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    index = faiss.IndexFlatIP(dim)
    index.add(rng.standard_normal((centroids, dim), dtype=np.float32))
    q = rng.standard_normal((queries, dim), dtype=np.float32)
    index.search(q[:200], 1)  # warm up
    start = time.perf_counter()
    index.search(q, 1)
    return 2.0 * dim * queries * centroids / (time.perf_counter() - start)


# What a row counts towards: a model stage, a search the pipeline runs, or a search shown
# for comparison only (brute force, and semantic dedup's former one-level routing).
MODEL, SEARCH, COMPARISON = "model", "search", "comparison"


@dataclass
class Row:
    stage: str
    items: float
    flops: float                      # total
    kind: str = MODEL
    cpu_core_h: float | None = None   # searches only: at faiss's measured rate per core


def hours(h: float) -> str:
    """One decimal, or two where one would print a search as 0.0."""
    return f"{h:,.1f}" if h >= 0.95 else f"{h:.2f}"


def search(stage: str, queries: float, centroids: float, dim: int, cpu_rate: float, repeat: float = 1,
           kind: str = SEARCH) -> Row:
    flops = 2.0 * dim * queries * centroids * repeat
    return Row(stage, queries, flops, kind, flops / cpu_rate / 3600)


def dedup_groups(rows: float) -> float:
    """semantic_neighbours' coarse groups (jobs/semantic_neighbours.py coarse_groups)."""
    return max(np.sqrt(rows / DEDUP_POINTS_PER_CLUSTER), rows / DEDUP_GROUP_ROWS)


def dedup_searches(kind: str, rows: float, dim: int, cpu_rate: float) -> list[Row]:
    """Two-level dedup clusters: every row to the coarse centroids, then each group's own k-means
    (fit on all its rows, KMEANS_ITERS iterations, and one assignment pass) into fine clusters."""
    groups = dedup_groups(rows)
    fine_per_group = rows / groups / DEDUP_POINTS_PER_CLUSTER
    return [search(f"semantic_neighbours: {kind} to {groups / 1e3:,.1f}k coarse groups", rows, groups, dim, cpu_rate),
            search(f"semantic_neighbours: {kind}, fine k-means per group ({fine_per_group:,.0f} clusters)",
                   rows, fine_per_group, dim, cpu_rate, KMEANS_ITERS + 1)]


def retrieval_centroid_searches(dim: int, cpu_rate: float) -> list[Row]:
    """Retrieval's two-level centroids: the coarse fit and each group's fit on the sample, every
    sentence to its group then among the group's K/G centroids, every image to COARSE_PROBES
    groups then among their centroids. Counted at the flat search's rate: faiss scans an IVF
    list slower per product than it multiplies a flat block, so the CPU column is a floor."""
    sample, per_group = CLUSTERS * KMEANS_POINTS_PER_CENTROID, CLUSTERS / COARSE_GROUPS
    return [search(f"cluster: k-means fit, {COARSE_GROUPS:,.0f} groups x {per_group:,.0f} centroids", sample,
                   COARSE_GROUPS + per_group, dim, cpu_rate, KMEANS_ITERS),
            search("cluster: assign sentences (group, then its centroids)", SENTENCES_KEPT,
                   COARSE_GROUPS + per_group, dim, cpu_rate),
            search(f"retrieve: coarse (images to {COARSE_PROBES} groups, then their centroids)", IMAGES_KEPT,
                   COARSE_GROUPS + COARSE_PROBES * per_group, dim, cpu_rate)]


def preset_rows(preset: str, cpu_rate_at) -> list[Row]:
    models = PRESETS[preset]
    image_f, text_f, dim = clip_flops(models["clip"])
    cpu_rate = cpu_rate_at(dim)
    tag_f = RAM_PLUS_GFLOP * 1e9 if models["tagger"] == "ram_plus" else 2.0 * dim * TAG_VOCAB
    return [
        Row("embed images", IMAGES_EMBEDDED, image_f * IMAGES_EMBEDDED),
        Row("embed sentences", SENTENCES_EMBEDDED, text_f * SENTENCES_EMBEDDED),
        Row(f"perplexity ({models['ppl_lm']}, {PPL_TOKENS} tokens)", SENTENCES_PPL,
            lm_flops(models["ppl_lm"], PPL_TOKENS) * SENTENCES_PPL),
        Row(f"caption ({models['captioner'].split('/')[-1]})", IMAGES_KEPT,
            captioner_flops(models["captioner"], CAPTION_TOKENS) * IMAGES_KEPT),
        Row(f"tags ({models['tagger']})", IMAGES_KEPT, tag_f * IMAGES_KEPT),
        Row(f"fusion ({models['llm'].split('/')[-1]}, {FUSION_TOKENS} tokens)", IMAGES_KEPT,
            lm_flops(models["llm"], FUSION_TOKENS) * IMAGES_KEPT),
        *dedup_searches("images", IMAGES_EMBEDDED, dim, cpu_rate),
        *dedup_searches("sentences", SENTENCES_EMBEDDED, dim, cpu_rate),
        *retrieval_centroid_searches(dim, cpu_rate),
        search(f"retrieve: fine ({PROBES} probes)", IMAGES_KEPT, PROBES * SENTENCES_KEPT / CLUSTERS, dim, cpu_rate),
        search("balance: k-means fit", BALANCE_CLUSTERS * KMEANS_POINTS_PER_CENTROID, BALANCE_CLUSTERS, dim,
               cpu_rate, KMEANS_ITERS),
        search("balance: assign pairs", BALANCE_PAIRS, BALANCE_CLUSTERS, dim, cpu_rate),
        search("brute force (every image x every sentence)", IMAGES_KEPT, SENTENCES_KEPT, dim, cpu_rate,
               kind=COMPARISON),
        search("semantic_neighbours: sentences, one flat level of K = rows / 200 (the former design)",
               SENTENCES_EMBEDDED, SENTENCES_EMBEDDED / DEDUP_POINTS_PER_CLUSTER, dim, cpu_rate, kind=COMPARISON),
        search("cluster + retrieve centroids, one flat level of K (the former design: fit, assign, coarse)",
               CLUSTERS * KMEANS_POINTS_PER_CENTROID * KMEANS_ITERS + SENTENCES_KEPT + IMAGES_KEPT, CLUSTERS, dim,
               cpu_rate, kind=COMPARISON),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu-tflops", type=float, default=312.0, help="peak dense bf16/fp16 (A100)")
    ap.add_argument("--mfu", type=float, default=0.35, help="share of the peak a stage sustains")
    # measured on this 2-core machine by the benchmark named; rates are for both cores
    ap.add_argument("--ingest-docs-per-s", type=float, default=1606, help="ingest.py")
    ap.add_argument("--extract-images-per-s", type=float, default=123.2,
                    help="extract.py images_per_s (loopback fetch, decode, quality, pHash)")
    ap.add_argument("--extract-sentences-per-s", type=float, default=1820, help="extract.py sentences_per_s")
    ap.add_argument("--perceptual-images-per-s", type=float, default=2e6 / 84.0,
                    help="scale.py perceptual at 2M images (groups on the executors)")
    ap.add_argument("--semantic-dedup-rows-per-s", type=float, default=10e6 / 47.5,
                    help="scale.py semantic_dedup at 2M images + 8M sentences (the threshold filter)")
    ap.add_argument("--cores", type=int, default=2, help="cores those rates were measured on")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # open_clip warns that no pretrained weights load

    rates: dict[int, float] = {}

    def cpu_rate_at(dim: int) -> float:
        if dim not in rates:
            rates[dim] = faiss_flops_per_s(dim)
            print(f"faiss flat search per core, d={dim}: {rates[dim] / 1e9:.1f} GFLOP/s")
        return rates[dim]

    gpu_rate = args.gpu_tflops * 1e12 * args.mfu
    cpu_rows = [
        ("ingest", DOCS, args.ingest_docs_per_s),
        ("extract images (fetch, decode, quality, pHash)", IMAGES, args.extract_images_per_s),
        ("extract sentences (split, quality)", SENTENCES, args.extract_sentences_per_s),
        ("perceptual dedup groups (images)", IMAGES_EMBEDDED, args.perceptual_images_per_s),
        ("semantic_dedup threshold filter", IMAGES_EMBEDDED + SENTENCES_EMBEDDED, args.semantic_dedup_rows_per_s),
    ]
    print("\nStages without a model (CPU, from measured rates):\n")
    print("| stage | rows | core-hours |\n|---|---|---|")
    cpu_total = 0.0
    for stage, rows, per_s in cpu_rows:
        core_h = rows / per_s * args.cores / 3600
        cpu_total += core_h
        print(f"| {stage} | {rows / 1e6:,.0f}M | {core_h:,.0f} |")

    totals: dict[str, dict[str, float]] = {}
    for preset in PRESETS:
        rows = preset_rows(preset, cpu_rate_at)
        print(f"\nPreset `{preset}` ({PRESETS[preset]['clip']}), GPU at {args.gpu_tflops:.0f} TFLOP/s x {args.mfu:.2f}:\n")
        print("| stage | items | GFLOP/item | GPU-hours | (at peak) | CPU core-hours (faiss) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            gpu_h = r.flops / gpu_rate / 3600
            peak_h = r.flops / (args.gpu_tflops * 1e12) / 3600
            cpu = "" if r.cpu_core_h is None else f"{r.cpu_core_h:,.0f}"
            print(f"| {r.stage} | {r.items / 1e6:,.0f}M | {r.flops / r.items / 1e9:,.3g} | {hours(gpu_h)} | "
                  f"{hours(peak_h)} | {cpu} |")

        def gpu_h_of(keep) -> float:
            return sum(r.flops for r in rows if keep(r)) / gpu_rate / 3600
        model_h = gpu_h_of(lambda r: r.kind == MODEL)
        search_h = gpu_h_of(lambda r: r.kind == SEARCH)
        retrieval_h = gpu_h_of(lambda r: r.kind == SEARCH and r.stage.startswith(("cluster", "retrieve")))
        totals[preset] = dict(model=model_h, search=search_h, retrieval=retrieval_h,
                              brute=gpu_h_of(lambda r: r.stage.startswith("brute force")))
        print(f"\nmodel stages {model_h:,.0f} GPU-h; searches {search_h:,.1f} GPU-h; "
              f"cluster + retrieve {hours(retrieval_h)} GPU-h against brute force {totals[preset]['brute']:,.0f} GPU-h "
              f"(the paper: about 40 for retrieval, more than 10,000 for brute force)")
    print(f"\nRESULT paper_retrieval_gpu_h={totals['paper']['retrieval']:.2f} "
          f"paper_brute_force_gpu_h={totals['paper']['brute']:.0f} paper_model_gpu_h={totals['paper']['model']:.0f} "
          f"base_model_gpu_h={totals['base']['model']:.0f} cpu_core_h={cpu_total:.0f}")


if __name__ == "__main__":
    main()

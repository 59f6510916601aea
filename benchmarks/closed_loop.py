"""The paper's ablation in miniature: students trained on the pipeline's pairs against the
neighbouring-text baseline, on the learnable world, scored zero-shot on its held-out set.

One run: write a world, train its teacher CLIP, captioner and fusion LLM (`realsyn teach`), run the whole pipeline on it with the teacher
(`realsyn run`, conf/world.yaml), then train a student from scratch on each variant, for
every training seed, on the same exported images:
- adjacent: each image with the text next to it in its document (the baseline);
- r1: text1 only;  r1_r3: text1-3;  r1_r3_s1: text1-3 and syn_text (the paper's mix);
- balanced: the subset of cap t (all four texts) against random: as many rows drawn at
  random from all exported rows.
Zero-shot accuracy is over all world classes, and separately over the rare ones (the
third of the concepts least frequent in the corpus). Attribute precision comes from the
dataset card (jobs/world/truth_report.py).

Before training, the card's concept coverage (jobs/world/coverage.py): the pool and each
subset beside random subsets of the same size.

Last line: `RESULT realsyn_minus_adjacent_zs=<points> balanced_minus_random_zs=<points>
balanced_minus_random_rare_zs=<points> head_share_cap_min=... entropy_gain_sd=...
r1_precision=... adjacent_precision=...` (realsyn = r1_r3_s1; goal >= 5 points, beyond the
spread). head_share_cap_min: the smallest cap's share of the pool's most frequent concept
over the pool's (goal <= 0.5); entropy_gain_sd: that subset's concept entropy above random
subsets' of its size, in their sd (goal >= 3).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realsyn.jobs.training.clip_training import TrainSpec, preprocess_all, train_contrastive  # noqa: E402
from realsyn.jobs.training.student import candidate_texts, evaluate_folder, read_export  # noqa: E402
from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.training.teacher import train_teacher  # noqa: E402
from realsyn.jobs.training.generators import teach_generators  # noqa: E402
from realsyn.jobs.world.corpus import write_world  # noqa: E402
from realsyn.jobs.world.quality import neighbouring_pairs  # noqa: E402
from realsyn.jobs.world.truth import SceneSpec, all_concepts, class_name  # noqa: E402
from realsyn.udfs.clip_encoder import Encoder, EncoderSpec  # noqa: E402
from realsyn.jobs.world.coverage import goal_figures  # noqa: E402
from realsyn.udfs.dataset_card import card_data, coverage_lines  # noqa: E402

ALL_TEXTS = ("text1", "text2", "text3", "syn_text")


def world_overrides(work: Path) -> list[str]:
    world = work / "world"
    return [f"run.work_dir={work}", f"run.input={world}/obelics/*.parquet", f"fetch.file_root={world}",
            f"models.weights_dir={work}/weights", f"export.world={world}"]


def run_pipeline(work: Path) -> float:
    cmd = [sys.executable, "-m", "realsyn.jobs.cli", "--conf", str(REPO / "conf" / "world.yaml")]
    for o in world_overrides(work):
        cmd += ["--set", o]
    started = time.time()
    subprocess.run(cmd + ["run"], check=True, cwd=REPO)
    return time.time() - started


def rare_classes(world: Path, share: float) -> set[str]:
    """The `share` of concepts with the fewest corpus images (ties by name)."""
    import pyarrow.parquet as pq
    counts = Counter({c: 0 for c in all_concepts()})
    for r in pq.read_table(world / "truth.parquet").to_pylist():
        if r["role"] == "original":
            for g in SceneSpec.from_json(r["spec"]).groups:
                counts[g.concept] += 1
    ranked = sorted(counts, key=lambda c: (counts[c], c))
    return {class_name(kind, colour) for colour, kind in ranked[:max(1, int(len(ranked) * share))]}


def neighbour_texts(world: Path) -> dict[str, str]:
    import pyarrow.parquet as pq
    rows = []
    for f in sorted((world / "obelics").glob("*.parquet")):
        rows += pq.read_table(f, columns=["images", "texts"]).to_pylist()
    return neighbouring_pairs(rows)


def variants(samples, neighbours: dict[str, str], cap: int, seed: int) -> dict[str, tuple[list, list[list[str]]]]:
    out = {"adjacent": ([s for s in samples if neighbours.get(s.url)],
                        [[neighbours[s.url]] for s in samples if neighbours.get(s.url)])}
    for name, sources in (("r1", ("text1",)), ("r1_r3", ALL_TEXTS[:3]), ("r1_r3_s1", ALL_TEXTS)):
        out[name] = candidate_texts(samples, sources)
    balanced = [s for s in samples if 0 <= s.min_cap <= cap]
    out["balanced"] = candidate_texts(balanced, ALL_TEXTS)
    drawn = random.Random(seed).sample(samples, len(balanced))
    out["random"] = candidate_texts(sorted(drawn, key=lambda s: s.key), ALL_TEXTS)
    return out


def train_and_score(pixels_of, chosen, texts, spec: TrainSpec, eval_dir: Path, rare: set[str], threads: int) -> dict:
    import torch
    encoder = Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=spec.seed, threads=threads, mixed_precision=False))
    pixels = torch.stack([pixels_of[s.key] for s in chosen])
    train_contrastive(encoder, pixels, texts, spec, log=lambda line: None)
    scores = evaluate_folder(encoder, str(eval_dir))
    rare_hits = [v for c, v in scores["per_class"].items() if c in rare]
    return {"zs": 100 * scores["zero_shot_acc"], "zs_mean_class": 100 * scores["zero_shot_mean_class_acc"],
            "zs_rare": 100 * statistics.mean(rare_hits) if rare_hits else float("nan"),
            "t2i": 100 * scores["t2i_recall_at_1"]}


def build(work: Path, args) -> None:
    """The world, its teacher, and the pipeline's export."""
    world = work / "world"
    started = time.time()
    write_world(str(world), n_docs=args.docs, n_images=args.images, n_eval_per_class=args.eval_per_class,
                n_teacher=args.teacher_pairs)
    teacher = train_teacher(str(world), str(work / "weights"), TrainSpec(steps=args.teacher_steps),
                            threads=args.threads, log=lambda line: None)
    generators = teach_generators(str(world), str(work / "weights"), load_config(
        files=[str(REPO / "conf" / "world.yaml")]), log=lambda line: print(line) if "WARNING" in line else None)
    captioner, fusion = generators["captioner"], generators["llm"]
    print(f"world + teacher + generators: {time.time() - started:.0f}s; teacher zero-shot "
          f"{100 * teacher['trained']['zero_shot_acc']:.1f}%; captioner names the concept of "
          f"{100 * captioner['names_concept']:.1f}% of held-out images; fusion precision on held-out examples "
          f"{100 * fusion['held_out_precision']['fused']:.1f}%; perplexity band {generators['ppl_lm']['band']}",
          flush=True)
    print(f"pipeline: {run_pipeline(work):.0f}s", flush=True)


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1200)
    ap.add_argument("--images", type=int, default=1600)
    ap.add_argument("--teacher-pairs", type=int, default=8000)
    ap.add_argument("--teacher-steps", type=int, default=600)
    ap.add_argument("--eval-per-class", type=int, default=6)
    ap.add_argument("--steps", type=int, default=300, help="student steps")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per variant")
    ap.add_argument("--cap", type=int, default=4, help="the balanced subset's cap t")
    ap.add_argument("--rare-share", type=float, default=1 / 3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--reuse", action="store_true",
                    help="train the students on the export already in --work (skip world, teacher and pipeline)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="realsyn-closed-loop-")).resolve()
    world = work / "world"
    if not (args.reuse and (work / "export" / "README.md").exists()):
        build(work, args)
    card = card_data((work / "export" / "README.md").read_text())
    if "coverage" not in card:
        raise SystemExit(f"{work}/export was written before the card had concept coverage: run without --reuse")
    truth, coverage = card["truth"], card["coverage"]
    print("attribute precision: " + ", ".join(f"{k} {100 * v['precision']:.1f}% ({v['pairs']})"
                                            for k, v in truth.items()), flush=True)
    print("\n".join(coverage_lines(coverage)), flush=True)
    goals = goal_figures(coverage)

    samples = read_export(str(work / "export"))
    encoder = Encoder(EncoderSpec(arch="tiny", pretrained="", weights="", seed=0, threads=args.threads, mixed_precision=False))
    pixels = preprocess_all(encoder, [s.image for s in samples])
    pixels_of = {s.key: pixels[i] for i, s in enumerate(samples)}
    rare = rare_classes(world, args.rare_share)
    neighbours = neighbour_texts(world)
    results: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for name, (chosen, texts) in variants(samples, neighbours, args.cap, seed).items():
            spec = TrainSpec(steps=args.steps, batch_size=args.batch, seed=seed, warmup_steps=max(1, args.steps // 12))
            started = time.time()
            got = train_and_score(pixels_of, chosen, texts, spec, world / "eval", rare, args.threads)
            results.setdefault(name, []).append({**got, "pairs": len(chosen)})
            print(f"seed {seed} {name:9s} pairs {len(chosen):5d}  zs {got['zs']:5.1f}  rare {got['zs_rare']:5.1f}  "
                  f"t2i {got['t2i']:5.1f}  ({time.time() - started:.0f}s)", flush=True)

    print(f"\n{'variant':10s} {'pairs':>6s} {'zero-shot %':>14s} {'rare %':>14s} {'mean/class %':>14s}")
    for name, runs in results.items():
        cols = [summary([r[k] for r in runs]) for k in ("zs", "zs_rare", "zs_mean_class")]
        print(f"{name:10s} {runs[0]['pairs']:6d} " + " ".join(f"{m:7.1f} ± {s:4.1f}" for m, s in cols))

    def diff(a: str, b: str, key: str = "zs") -> float:
        return statistics.mean(r[key] for r in results[a]) - statistics.mean(r[key] for r in results[b])

    (work / "closed_loop.json").write_text(json.dumps({"truth": truth, "coverage": coverage, "results": results},
                                                      indent=1))
    print(f"RESULT realsyn_minus_adjacent_zs={diff('r1_r3_s1', 'adjacent'):.2f} "
          f"balanced_minus_random_zs={diff('balanced', 'random'):.2f} "
          f"balanced_minus_random_rare_zs={diff('balanced', 'random', 'zs_rare'):.2f} "
          f"head_share_cap_min={goals['head_share_cap_min']:.3f} entropy_gain_sd={goals['entropy_gain_sd']:.2f} "
          f"r1_precision={truth['text1']['precision']:.3f} adjacent_precision={truth['neighbouring_text']['precision']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

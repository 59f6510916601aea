"""The model commands, each one MLflow run in the pipeline's experiment with the folders it
read and wrote as datasets: `teach` (jobs/training/teacher.py), `train` and `evaluate` (jobs/training/student.py)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict

from realsyn.jobs.core.config import ConfigError


def run_teach_command(args, cfg) -> int:
    from realsyn.jobs.training.clip_training import TrainSpec
    from realsyn.jobs.training.teacher import train_teacher
    from realsyn.jobs.core.tracking import Tracker, folder_lineage
    tracker = Tracker(cfg)
    out = args.weights_dir or cfg.get("models.weights_dir") or os.path.join(cfg.get("run.work_dir"), "weights")
    spec = TrainSpec(steps=cfg.get("teacher.steps"), batch_size=cfg.get("teacher.batch_size"),
                     lr=cfg.get("teacher.lr"), seed=cfg.get("run.seed"))
    with tracker.run("teach", tags={"realsyn.command": "teach"}):
        tracker.lineage([folder_lineage(os.path.join(args.world, "teacher", "pairs.parquet"), "training"),
                         folder_lineage(os.path.join(args.world, "eval"), "evaluation"),
                         folder_lineage(out, "output")])
        tracker.params({"world": os.path.abspath(args.world), "weights_dir": os.path.abspath(out),
                        **{f"train.{k}": v for k, v in asdict(spec).items()}})
        report = train_teacher(args.world, out, spec, threads=cfg.get("teacher.threads"), force=args.force)
        tracker.metrics({f"teacher.{k}": v for k, v in report["trained"].items() if isinstance(v, float)})
        tracker.dict(report, "teacher.json")
        print(f"teacher: zero-shot accuracy {report['trained']['zero_shot_acc']:.3f} on {args.world}/eval "
              f"-> {out} (use --set models.weights_dir={out})")
        if cfg.get("teacher.generators"):
            from realsyn.jobs.training.generators import teach_generators
            tracker.dict(teach_generators(args.world, out, cfg, force=args.force), "generators.json")
    return 0


def run_student_command(args, cfg) -> int:
    from realsyn.jobs.training.clip_training import TrainSpec
    from realsyn.jobs.training.student import evaluate_weights, parse_sources, shard_paths, train_student
    from realsyn.jobs.core.tracking import Tracker, folder_lineage
    tracker = Tracker(cfg)
    threads = cfg.get("student.threads")
    if args.command == "evaluate":
        with tracker.run("evaluate", tags={"realsyn.command": "evaluate"}):
            tracker.lineage([folder_lineage(args.weights, "input"), folder_lineage(args.eval, "evaluation")])
            scores = evaluate_weights(args.weights, args.eval, cfg.get("run.seed"), threads)
            tracker.params({"weights": os.path.abspath(args.weights), "eval": scores["folder"]})
            tracker.metrics({k: v for k, v in scores.items() if isinstance(v, float)})
            tracker.dict(scores, "evaluate.json")
        print(json.dumps({k: v for k, v in scores.items() if k != "per_class"}, indent=1))
        return 0
    try:
        sources = parse_sources(args.texts)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    work = cfg.get("run.work_dir")
    spec = TrainSpec(steps=cfg.get("student.steps"), batch_size=cfg.get("student.batch_size"),
                     lr=cfg.get("student.lr"), seed=cfg.get("run.seed"))
    export = args.export or os.path.join(work, "export")
    out = args.out or os.path.join(work, "student")
    with tracker.run("train", tags={"realsyn.command": "train"}):
        # The folder of shards it reads (the export's webdataset/, or the folder given).
        tracker.lineage([folder_lineage(os.path.dirname(shard_paths(export)[0]), "training")]
                        + ([folder_lineage(args.eval, "evaluation")] if args.eval else [])
                        + [folder_lineage(out, "output")])
        report = train_student(export, out, spec, sources, args.cap, args.eval, threads, tracker=tracker)
    shown = report.get("eval", {})
    print(f"student: {report['pairs']} pairs, {spec.steps} steps in {report['seconds']:.0f}s -> "
          f"{os.path.join(out, 'clip')}"
          + (f"; zero-shot accuracy {shown['zero_shot_acc']:.3f} on {args.eval}" if shown else ""))
    return 0

"""The `train` and `evaluate` commands (jobs/student.py), each one MLflow run."""
from __future__ import annotations

import json
import os

from realsyn.jobs.config import ConfigError


def run_student_command(args, cfg) -> int:
    from realsyn.jobs.clip_training import TrainSpec
    from realsyn.jobs.student import evaluate_weights, parse_sources, train_student
    from realsyn.jobs.tracking import Tracker
    tracker = Tracker(cfg)
    threads = cfg.get("student.threads")
    if args.command == "evaluate":
        with tracker.run("evaluate", tags={"realsyn.command": "evaluate"}):
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
        report = train_student(export, out, spec, sources, args.cap, args.eval, threads, tracker=tracker)
    shown = report.get("eval", {})
    print(f"student: {report['pairs']} pairs, {spec.steps} steps in {report['seconds']:.0f}s -> "
          f"{os.path.join(out, 'clip')}"
          + (f"; zero-shot accuracy {shown['zero_shot_acc']:.3f} on {args.eval}" if shown else ""))
    return 0

"""`realsyn` command line: run the pipeline or one stage, make the sample, show config."""
from __future__ import annotations

import argparse
import logging
import sys

STAGE_HELP = "run only this stage"
PLAN_HELP = "print what would run or be skipped, and why; run and write nothing"
FULL_REFRESH_HELP = ("recompute everything, fetches and embeddings included, instead of reusing the work "
                     "earlier runs committed (implies --force)")


def common_options(default) -> argparse.ArgumentParser:
    """Options accepted before and after the command (after: SUPPRESS keeps the earlier value)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=default,
                        help="local | standalone | databricks | emr | gpu (default local)")
    common.add_argument("--conf", action="append", default=default, metavar="FILE",
                        help="extra YAML config layered over the defaults (repeatable)")
    common.add_argument("--set", action="append", default=default, metavar="KEY=VALUE",
                        dest="overrides", help="override one key, e.g. --set retrieval.top_k=5")
    common.add_argument("--input", default=default, help="OBELICS parquet path or glob (run.input)")
    common.add_argument("--work-dir", default=default, help="where tables and MLflow live (run.work_dir)")
    common.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="show Spark's and the libraries' output on the console (default: in a log file)")
    return common


def build_parser(stage_names: list[str]) -> argparse.ArgumentParser:
    common = common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="realsyn", parents=[common_options(None)],
        description="Build RealSyn-style CLIP pre-training data with Spark and Delta Lake.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the pipeline (all stages, or --stages)")
    run.add_argument("--stages", default=None, help="comma-separated stage names")
    run.add_argument("--force", action="store_true", help="redo stages even when unchanged")
    run.add_argument("--full-refresh", action="store_true", help=FULL_REFRESH_HELP)
    run.add_argument("--plan", action="store_true", help=PLAN_HELP)
    run.add_argument("--refit", action="store_true",
                     help="fit new centroids (sentences, dedup, balance) even when the stored ones still fit "
                          "(kmeans.refit)")
    for name in stage_names:
        p = sub.add_parser(name, parents=[common], help=STAGE_HELP)
        p.add_argument("--force", action="store_true", help="redo the stage even when unchanged")
        p.add_argument("--full-refresh", action="store_true", help=FULL_REFRESH_HELP)
        p.add_argument("--plan", action="store_true", help=PLAN_HELP)
    refetch = sub.add_parser("refetch", parents=[common],
                             help="fetch again the image URLs rejected for some reasons (or all), then run the pipeline")
    which = refetch.add_mutually_exclusive_group(required=True)
    which.add_argument("--reasons", help="comma-separated, e.g. timeout,connection_error,http_5xx")
    which.add_argument("--all", action="store_true",
                       help="forget every stored response: every URL is fetched again (the web has changed)")
    refetch.add_argument("--stages", default=None, help="comma-separated stage names to run after (default all)")
    sample = sub.add_parser("sample", parents=[common], help="write the bundled sample corpus")
    sample.add_argument("--out", default="work/sample", help="output folder")
    sample.add_argument("--docs", type=int, default=300, help="number of documents")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--world", action="store_true",
                        help="write the learnable world instead: procedural scenes whose descriptions sit in "
                             "other documents, plus a held-out eval set and teacher pairs (jobs/world/corpus.py)")
    sample.add_argument("--eval-per-class", type=int, default=4, help="with --world: eval images per class")
    sample.add_argument("--teacher-pairs", type=int, default=8000, help="with --world: noisy teacher pairs")
    teach = sub.add_parser("teach", parents=[common],
                           help="train the tiny CLIP teacher on a world's alt-text split (sample --world)")
    teach.add_argument("--world", required=True, help="the folder `realsyn sample --world` wrote")
    teach.add_argument("--weights-dir", default=None,
                       help="where to save it (default models.weights_dir, else <work_dir>/weights)")
    teach.add_argument("--force", action="store_true", help="train again even when the inputs are unchanged")
    train = sub.add_parser("train", parents=[common],
                           help="train a student CLIP on an export's WebDataset shards (logged to MLflow)")
    train.add_argument("--export", default=None, help="export folder (default <work_dir>/export)")
    train.add_argument("--texts", default="text1,text2,text3,syn_text",
                       help="texts to draw one from per sample and step (default all four, as the paper)")
    train.add_argument("--cap", type=int, default=None, help="train on the subset of this cap t only")
    train.add_argument("--eval", default=None, help="ImageFolder to score it on (class sub-folders)")
    train.add_argument("--out", default=None, help="where to save it (default <work_dir>/student)")
    evaluate = sub.add_parser("evaluate", parents=[common],
                              help="zero-shot scores of saved tiny-CLIP weights on an ImageFolder")
    evaluate.add_argument("--weights", required=True, help=".safetensors file, or a folder holding one")
    evaluate.add_argument("--eval", required=True, help="ImageFolder: one sub-folder of images per class")
    check = sub.add_parser("check-models", parents=[common],
                           help="run a preset's models through the stages' executor code on a few rows")
    check.add_argument("--preset", default=None, help="tiny | base | paper (default models.preset)")
    check.add_argument("--random-init", action="store_true",
                       help="build the preset's real classes at random init, offline, instead of loading weights")
    check.add_argument("--wiring-only", action="store_true",
                       help="build on the meta device and check names, dimensions and processors; run nothing")
    sub.add_parser("config", parents=[common], help="print the resolved config and exit")
    doctor = sub.add_parser("doctor", parents=[common],
                            help="check what a job on this profile needs (Spark, Delta, GPUs, S3, weights, MLflow)")
    doctor.add_argument("--spark", action="store_true",
                        help="also start a Spark session and report the executors' GPUs")
    sub.add_parser("submit-args", parents=[common],
                   help="print the spark-submit flags (Delta jars, settings) for this profile")
    return parser


def _merge_common(args) -> tuple[str, list[str], list[str]]:
    overrides = list(args.overrides or [])
    if args.input:
        overrides.append(f"run.input={args.input}")
    if args.work_dir:
        overrides.append(f"run.work_dir={args.work_dir}")
    if getattr(args, "refit", False):
        overrides.append("kmeans.refit=true")
    if getattr(args, "preset", None):
        overrides.append(f"models.preset={args.preset}")
    return args.profile or "local", list(args.conf or []), overrides


def show_config(args, cfg) -> int:
    import yaml
    print(yaml.safe_dump(cfg.redacted(), sort_keys=False))
    return 0


def show_submit_args(args, cfg) -> int:
    import shlex
    from realsyn.jobs.core.session import submit_args
    print(" ".join(shlex.quote(a) for a in submit_args(cfg)))
    return 0


def write_sample_command(args, cfg) -> int:
    if args.world:
        from realsyn.jobs.world.corpus import write_world
        info = write_world(args.out, n_docs=args.docs, seed=args.seed, n_eval_per_class=args.eval_per_class,
                           n_teacher=args.teacher_pairs)
        print(f"world: {info['documents']} documents, {info['images']} image files, {info['eval_images']} eval "
              f"images, {info['teacher_pairs']} teacher pairs -> {info['out']}")
        return 0
    from realsyn.jobs.corpora.sample_corpus import write_sample
    info = write_sample(args.out, n_docs=args.docs, seed=args.seed)
    print(f"sample: {info['documents']} documents, {info['images']} image files -> {info['out']}")
    return 0


def run_command(args, cfg) -> int:
    """`run`, `refetch` and each stage's command: the stages through the runner, with Spark's
    and the libraries' output in a log file unless -v (or a platform's step log) wants it."""
    from realsyn.jobs.pipeline import plan_stages, run_stages, summary
    from realsyn.jobs.core.redact import redact_text
    before = None
    if args.command == "refetch":
        from realsyn.jobs.core.refetch import parse_reasons, refetch_before_run
        before = refetch_before_run(None if args.all else parse_reasons(args.reasons))
    if args.command in ("run", "refetch"):
        stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else (
            cfg.get("run.stages") or None)
    else:
        stages = [args.command]
    force, full_refresh = getattr(args, "force", False), getattr(args, "full_refresh", False)

    def execute(run_cfg, say, console=None) -> None:
        if getattr(args, "plan", False):
            say(redact_text(f"realsyn: plan for profile={run_cfg.profile} work_dir={run_cfg.get('run.work_dir')} "
                            "(nothing is run or written)"))
            for planned in plan_stages(run_cfg, stages, force=force, full_refresh=full_refresh):
                say(planned.line())
            return
        say(summary(run_stages(run_cfg, stages, force=force, say=say, console=console,
                               full_refresh=full_refresh, before=before)))

    from realsyn.jobs.core.session import launched_by_spark_submit
    # Under spark-submit or on Databricks the JVM's output is the platform's step log.
    if args.verbose or launched_by_spark_submit() or cfg.profile == "databricks":
        execute(cfg, print)
        return 0
    from realsyn.jobs.core.console import log_path, quiet_console
    path = log_path(cfg.get("run.work_dir"))
    with quiet_console(path) as console:
        console.say(f"realsyn: Spark and library logs go to {path} (-v shows them here)")
        execute(cfg.with_overrides(["spark.progress_bar=false"]), console.say, console)
    return 0


# command -> its handler, "module:function" (imported only when the command is typed), called
# with the parsed arguments and the config; it returns the exit code. The stages' commands
# go to run_command.
COMMANDS = {
    "run": f"{__name__}:run_command",
    "refetch": f"{__name__}:run_command",
    "sample": f"{__name__}:write_sample_command",
    "config": f"{__name__}:show_config",
    "submit-args": f"{__name__}:show_submit_args",
    "check-models": "realsyn.jobs.checks.model_check:run_check_command",
    "doctor": "realsyn.jobs.checks.doctor:run_doctor_command",
    "teach": "realsyn.jobs.training.student_cli:run_teach_command",
    "train": "realsyn.jobs.training.student_cli:run_student_command",
    "evaluate": "realsyn.jobs.training.student_cli:run_student_command",
}


def handler(command: str):
    import importlib
    module, function = COMMANDS.get(command, f"{__name__}:run_command").split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.core.redact import install_log_filter
    from realsyn.jobs.pipeline import stage_names
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_filter()
    parser = build_parser(stage_names())
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return handler(args.command)(args, load_config(*_merge_common(args)))
    except Exception as err:  # one clear line for the user, never only a Java trace
        return _report(err)


def entry() -> int:
    """The `realsyn` console script. A failure raises SystemExit: a Databricks wheel task
    calls this function and ignores its return value, so returning 2 would pass as success."""
    code = main()
    if code:
        raise SystemExit(code)
    return 0


def _report(err: Exception) -> int:
    """One line for the failures a user can fix (jobs/core/errors.py) and for a full disk or a
    concurrent writer; a traceback for the rest. All with secrets masked."""
    import traceback
    from realsyn.jobs.core.errors import UserError
    from realsyn.jobs.core.redact import redact_text
    if isinstance(err, UserError):
        print(redact_text(f"realsyn: error: {err}"), file=sys.stderr)
        return 2
    full = no_space(err)
    if full:
        print(redact_text(f"realsyn: error: no space left on the device ({full}); free space or point the "
                          "work or export folder elsewhere, then rerun: committed tables are intact and an "
                          "unfinished export was never swapped in"), file=sys.stderr)
        return 1
    conflict = delta_conflict(err)
    if conflict:
        print(redact_text(f"realsyn: error: another run changed the same Delta table concurrently ({conflict}); "
                          "every commit is atomic, so nothing is corrupted: rerun once the other run is done"),
              file=sys.stderr)
        return 2
    try:
        from pyspark.errors import PySparkException
        if isinstance(err, PySparkException):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(redact_text(f"realsyn: error: Spark: {first}"), file=sys.stderr)
            return 1
    except ImportError:
        pass
    print(redact_text("".join(traceback.format_exception(err))), file=sys.stderr, end="")
    return 1


# Delta's optimistic concurrency: the losing writer gets one of these (by class or error code).
DELTA_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
                   "ConcurrentTransactionException", "ConcurrentWriteException", "MetadataChangedException",
                   "ProtocolChangedException", "DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED",
                   "DELTA_PROTOCOL_CHANGED")


NO_SPACE = ("No space left on device", "Disk quota exceeded")


def causes(err: BaseException | None, limit: int = 10):
    """err and the exceptions it was raised from or during, innermost last (at most `limit`)."""
    seen = 0
    while err is not None and seen < limit:
        yield err
        err, seen = err.__cause__ or err.__context__, seen + 1


def no_space(err: BaseException | None) -> str:
    """Where a disk filled up (a file name, or the error's first line), found anywhere in the
    cause chain (a Python OSError, or a Java IOException inside a Spark error), else ''."""
    import errno
    for e in causes(err):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return str(e.filename or e.strerror)
        text = str(e)
        for marker in NO_SPACE:
            if marker in text:
                return next(l.strip() for l in text.splitlines() if marker in l)[:300]
    return ""


def delta_conflict(err: BaseException | None) -> str:
    """The first line of a Delta write-conflict error anywhere in the cause chain, else ''."""
    for e in causes(err):
        if any(name in f"{type(e).__name__}: {e}" for name in DELTA_CONFLICTS):
            lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
            return lines[0][:300] if lines else type(e).__name__
    return ""


if __name__ == "__main__":
    sys.exit(main())

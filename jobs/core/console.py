"""What a person sees while a run goes on.

By default the console shows our lines only: one when a stage starts, one when it ends
(rows in / kept / rejected, seconds), and a progress line for a long stage, all through
one lock so nothing interleaves. Everything else (the JVM's log4j output and progress bar,
Python workers' prints, library warnings, our own log records) goes to a log file under
the work dir, whose path the run prints first. `-v` keeps the old, verbose console.

The file takes the process's stdout and stderr file descriptors before the JVM starts, so
Spark and the Python workers it forks write there too; our own streams keep duplicates of
the original descriptors.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

QUIET_LOGGERS = ("py4j", "matplotlib", "faiss", "streaming", "urllib3", "PIL", "transformers", "torch")


class Console:
    """Lines and one redrawable progress line on a stream, never interleaved."""

    def __init__(self, stream=None, progress_every_s: float = 30.0):
        self.stream = stream or sys.stdout
        self.lock = threading.RLock()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.progress_every_s = progress_every_s
        self._shown = 0            # width of the progress line on screen (tty)
        self._last_progress = 0.0  # when a progress line was last written (not a tty)

    def say(self, text: str) -> None:
        with self.lock:
            self._erase()
            self.stream.write(f"{text}\n")
            self.stream.flush()

    def progress(self, text: str) -> None:
        with self.lock:
            if self.tty:
                self.stream.write("\r" + text.ljust(self._shown))
                self._shown = len(text)
            elif time.monotonic() - self._last_progress >= self.progress_every_s:
                self.stream.write(f"{text}\n")
                self._last_progress = time.monotonic()
            self.stream.flush()

    def done(self) -> None:
        with self.lock:
            self._erase()
            self._last_progress = 0.0

    def _erase(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0


class ConsoleHandler(logging.Handler):
    """Our warnings on the console, through the console's lock."""

    def __init__(self, console: Console):
        super().__init__(logging.WARNING)
        self.console = console
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.say(self.format(record))
        except Exception:
            self.handleError(record)


class StageProgress:
    """A background thread that shows the tasks of the stage's Spark jobs (its job group)."""

    def __init__(self, spark, group: str, console: Console, every_s: float = 1.0, after_s: float = 3.0):
        self.spark, self.group, self.console = spark, group, console
        self.every_s, self.after_s = every_s, after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{group}", daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.console.done()

    def line(self) -> str | None:
        tracker = self.spark.sparkContext.statusTracker()
        done = total = 0
        jobs = 0
        for job_id in tracker.getJobIdsForGroup(self.group):
            job = tracker.getJobInfo(job_id)
            if job is None or job.status != "RUNNING":
                continue
            jobs += 1
            for stage_id in job.stageIds:
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done, total = done + info.numCompletedTasks, total + info.numTasks
        took = time.monotonic() - self.started
        if not jobs:
            return f"[{self.group}] running, {took:.0f}s"
        return f"[{self.group}] running, {took:.0f}s: {done}/{total} tasks in {jobs} Spark job(s)"

    def _loop(self) -> None:
        if self._stop.wait(self.after_s):
            return
        while not self._stop.is_set():
            try:
                text = self.line()
            except Exception:   # the session is closing: nothing to show
                return
            if text and not self._stop.is_set():
                self.console.progress(text)
            self._stop.wait(self.every_s)


def log_path(work_dir: str) -> Path:
    folder = Path(work_dir).expanduser() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return folder / f"realsyn-{stamp}-{os.getpid()}.log"


@contextlib.contextmanager
def quiet_console(path: Path):
    """stdout and stderr (the descriptors, inherited by the JVM) go to `path`; Python's
    sys.stdout / sys.stderr keep the terminal. Yields the Console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(saved_out), "wb", buffering=0), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved_err), "wb", buffering=0), line_buffering=True)
    from realsyn.jobs.core.redact import RedactingFilter
    log_file = open(path, "a", buffering=1, encoding="utf-8", errors="replace")
    console = Console(sys.stdout)
    root = logging.getLogger()
    previous = root.handlers[:]
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = ConsoleHandler(console)
    for handler in (file_handler, ours):
        handler.addFilter(RedactingFilter())
    root.handlers = [file_handler]
    root.setLevel(logging.INFO)
    logging.getLogger("realsyn").addHandler(ours)
    for name in QUIET_LOGGERS:   # their chatter stays in the file
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield console
    finally:
        logging.captureWarnings(False)
        logging.getLogger("realsyn").removeHandler(ours)
        root.handlers = previous
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = old_out, old_err
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        log_file.close()

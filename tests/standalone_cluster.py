"""A real Spark standalone cluster (one master, one worker) on 127.0.0.1, from the pyspark install.

The pip pyspark has no sbin/start-*.sh, so the daemons start through bin/spark-class, each in
its own process group: stopping kills the group, so executors and their Python workers go too.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_class() -> str:
    return os.path.join(os.path.dirname(sys.executable), "spark-class")


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (from /proc, no extra dependency)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


class StandaloneCluster:
    def __init__(self, work: Path, cores: int = 2, memory: str = "4g"):
        self.work = Path(work)
        self.cores, self.memory = cores, memory
        self.port, self.ui_port = free_port(), free_port()
        self.procs: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], env: dict) -> None:
        log = open(self.work / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen([spark_class(), *args], stdout=log, stderr=subprocess.STDOUT,
                                           env=env, start_new_session=True))

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as resp:
            return json.load(resp)

    def start(self, timeout_s: float = 120) -> "StandaloneCluster":
        self.work.mkdir(parents=True, exist_ok=True)
        import pyspark
        # spark-class finds its home through the Python it is told of; name it outright so a
        # caller without PYSPARK_PYTHON set (a benchmark) starts the same daemons.
        env = {"SPARK_HOME": os.path.dirname(pyspark.__file__), **os.environ,
               "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(self.port), "--webui-port", str(self.ui_port)], env)
        self._start("worker", ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                               "--cores", str(self.cores), "--memory", self.memory, "--webui-port", "0",
                               "--work-dir", str(self.work / "worker"), self.master_url], env)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"standalone daemon exited ({p.args[1]}); see logs in {self.work}")
            try:
                if self.status().get("aliveworkers", 0) >= 1:
                    return self
            except OSError:
                pass
            time.sleep(1)
        raise RuntimeError(f"standalone cluster not up after {timeout_s}s; see logs in {self.work}")

    def stop(self) -> list[int]:
        """Kill every process of both groups; return the pids still alive (should be none)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in self.procs:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 20
            while time.time() < deadline and any(group_members(p.pid) for p in self.procs):
                time.sleep(0.5)
        for p in self.procs:
            p.wait(timeout=10)
        return [pid for p in self.procs for pid in group_members(p.pid)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

"""The peers' side of benchmarks/engine_peers.py: one engine (Daft or Ray Data) embeds the
images of one Parquet file and writes the vectors to Parquet. Run by engine_peers.py with the
peers' own virtualenv's Python (~/.cache/realsyn/bench-engines), never imported by realsyn.

Each engine is written the way its docs recommend for batch inference on CPUs:
- Daft: `daft.read_parquet` -> a class UDF (`@daft.cls(max_concurrency=workers, cpus=1)`
  with a `@daft.method.batch(batch_size=..., return_dtype=embedding)` method that decodes the
  bytes with Pillow and embeds) -> `write_parquet`. `use_process` is left to Daft (its docs:
  it chooses); Daft 0.7.26 runs the instances as threads of its own process here (it runs a
  UDF in processes only when its input and output columns are plain Arrow types; an embedding
  is not). Forcing processes (a fixed_size_list output, use_process=True) was tried: 2.3x the
  CPU per image for tiny (the batches cross to the processes and back). With
  `daft_decode: "daft"` the bytes go through Daft's own `decode_image(mode=RGB)` first (its
  docs' image pattern): Daft then decodes in its Rust threads while the models load, before
  the clock starts, so that run times less work than the others.
  The PEER line says where the workers ran.
- Ray Data: `ray.data.read_parquet` -> `map_batches` with a callable class (an actor pool:
  `concurrency` = workers, `num_cpus=1`, `batch_size`) that decodes the bytes with Pillow ->
  `write_parquet`. Decoding sits in the actor: with one CPU per actor on a 2-core machine, a
  separate task stage for it would have no CPU to run on.

The model code is the same in both (and matches realsyn's Encoder): open_clip's CLIP built
from the architecture, the weights loaded from the safetensors file engine_peers.py wrote,
open_clip's eval preprocess per image, encode, L2-normalise; `threads` torch threads per
worker. Model load is not timed: every worker loads its model, then waits at a barrier until
all have; the clock starts when the last one is ready and stops when the Parquet is written.
Prints one line `PEER {json}` with the timing and the versions used.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np


class ClipImages:
    """open_clip model + preprocess, one per worker; `ready` is when the barrier opened."""

    def __init__(self, spec: dict):
        import open_clip
        import torch
        from open_clip.transform import image_transform
        from safetensors.torch import load_file
        torch.set_num_threads(spec["threads"])
        self.torch = torch
        if spec["arch"] == "tiny":
            from open_clip.model import CLIP
            model = CLIP(**spec["tiny_cfg"])
        else:
            model = open_clip.create_model(spec["arch"], pretrained=None)
        model.load_state_dict(load_file(spec["weights"]), strict=True)
        self.model = model.eval()
        self.preprocess = image_transform(spec["image_size"], is_train=False)
        self.ready = barrier(Path(spec["barrier_dir"]), spec.get("workers_barrier", spec["workers"]))

    def embed(self, images: list) -> np.ndarray:
        torch = self.torch
        batch = torch.stack([self.preprocess(im) for im in images])
        with torch.inference_mode():
            out = self.model.encode_image(batch)
        return torch.nn.functional.normalize(out.float(), dim=-1).numpy()


def barrier(folder: Path, parties: int, timeout_s: float = 300.0) -> float:
    """Mark this worker ready and wait until `parties` workers are (or the timeout passes)."""
    folder.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()}-{threading.get_ident()}"
    (folder / f"ready-{me}").write_text(str(time.time()))
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob("ready-*"))) < parties and time.monotonic() < deadline:
        time.sleep(0.02)
    now = time.time()
    (folder / f"go-{me}").write_text(str(now))
    return now


def tree_ticks(root: int) -> dict[int, int]:
    """pid -> own user + system clock ticks, for a process and all its descendants."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        pid = int(text.split(" ", 1)[0])
        ticks[pid] = int(fields[11]) + int(fields[12])
        children.setdefault(int(fields[1]), []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in ticks:
            out[pid] = ticks[pid]
            todo += children.get(pid, [])
    return out


class CpuWindow:
    """CPU seconds of a process tree between start() and stop(): every process is sampled
    every `every` s, so the work of one that exits in the window (a Ray worker, a Spark task's
    helper) still counts up to its last sample; none is counted twice."""

    def __init__(self, root: int, every: float = 0.5):
        self.root, self.every = root, every
        self.base: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "CpuWindow":
        self.base = tree_ticks(self.root)
        self.last = dict(self.base)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self.last.update(tree_ticks(self.root))

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.last.update(tree_ticks(self.root))
        ticks = sum(t - self.base.get(pid, 0) for pid, t in self.last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def cpu_at_barrier(folder: Path, parties: int, out: dict) -> threading.Thread:
    """Start a CpuWindow over this process tree as soon as every worker passed the barrier."""
    def watch() -> None:
        deadline = time.monotonic() + 900
        while len(list(folder.glob("go-*"))) < parties and time.monotonic() < deadline:
            time.sleep(0.02)
        out["window"] = CpuWindow(os.getpid()).start()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def clock_start(folder: Path, parties: int) -> tuple[float, str]:
    """When the last worker passed the barrier, and where the workers ran."""
    times = [float(p.read_text()) for p in folder.glob("go-*")]
    workers = [p.name.split("-")[1:] for p in folder.glob("ready-*")]
    pids = {pid for pid, _ in workers}
    where = (f"{len(workers)} of {parties} workers ready at the barrier, in {len(pids)} process(es)"
             + (" (threads of the driver)" if pids == {str(os.getpid())} else ""))
    return max(times), where


def run_daft(spec: dict) -> dict:
    import daft
    from PIL import Image

    native = spec.get("daft_decode") == "daft"

    @daft.cls(max_concurrency=spec["workers"], cpus=1)     # use_process left to Daft, as its docs advise
    class Embedder:
        def __init__(self, model_spec: dict):
            self.clip = ClipImages(model_spec)

        @daft.method.batch(return_dtype=daft.DataType.embedding(daft.DataType.float32(), spec["dim"]),
                           batch_size=spec["batch"])
        def __call__(self, images: daft.Series):
            if native:     # decoded by Daft: HxWx3 uint8 arrays
                return self.clip.embed([Image.fromarray(a) for a in images.to_pylist()])
            return self.clip.embed([Image.open(io.BytesIO(b)).convert("RGB") for b in images.to_pylist()])

    df = daft.read_parquet(spec["input"])
    column = df["bytes"].decode_image(mode=daft.ImageMode.RGB) if native else df["bytes"]
    df = df.select("image_id", Embedder(spec)(column).alias("embedding"))
    df.write_parquet(spec["out"])
    return {"end": time.time()}


class RayEmbedder:
    def __init__(self, spec: dict):
        self.clip = ClipImages(spec)

    def __call__(self, batch: dict) -> dict:
        from PIL import Image
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in batch["bytes"]]
        return {"image_id": batch["image_id"], "embedding": self.clip.embed(images)}


def run_ray(spec: dict) -> dict:
    import ray
    # workers + 1 logical CPUs: the actors take one each and the read and write tasks the last
    # (with exactly `workers`, the pool holds them all and the read never starts).
    ray.init(num_cpus=spec["workers"] + 1, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ds = ray.data.read_parquet(spec["input"])
    ds = ds.map_batches(RayEmbedder, fn_constructor_kwargs={"spec": spec}, batch_size=spec["batch"],
                        num_cpus=1, compute=ray.data.ActorPoolStrategy(size=spec["workers"]))
    ds.write_parquet(spec["out"])
    end = time.time()
    return {"end": end, "before_exit": ray.shutdown}     # the CPU window closes before the actors go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", nargs="?", help="JSON file: engine, input, out, arch, tiny_cfg, weights, image_size, dim, "
                                 "batch, workers, threads, barrier_dir")
    given = ap.parse_args().spec
    if given is None:     # `make bench` runs every script in benchmarks/: this one is engine_peers.py's
        print("engine_peers_worker.py runs inside benchmarks/engine_peers.py (the peers' own venv); nothing to do")
        return
    spec = json.loads(Path(given).read_text())
    os.environ.setdefault("OMP_NUM_THREADS", str(spec["threads"]))
    t0 = time.time()
    at_barrier: dict = {}
    watcher = cpu_at_barrier(Path(spec["barrier_dir"]), spec["workers"], at_barrier)
    done = {"daft": run_daft, "ray": run_ray}[spec["engine"]](spec)
    watcher.join()
    cpu = at_barrier["window"].stop()
    done.get("before_exit", lambda: None)()
    start, workers = clock_start(Path(spec["barrier_dir"]), spec["workers"])
    import open_clip
    import PIL
    import pyarrow
    import torch
    engine = __import__(spec["engine"])
    print("PEER " + json.dumps({
        "engine": spec["engine"], "seconds": done["end"] - start, "seconds_with_load": done["end"] - t0,
        "cpu_s": cpu,
        "workers": workers, "versions": {
            spec["engine"]: engine.__version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "pillow": PIL.__version__, "pyarrow": pyarrow.__version__, "numpy": np.__version__}}), flush=True)


if __name__ == "__main__":
    main()

"""Export outputs kept as stable shards, so an export after an increment rewrites only the
shards whose rows changed (issue #41).

Why: every export used to rewrite all release Parquet files, tars and MDS shards, so a
10% increment cost a whole export's writes (and a JPEG re-encode of every image).

Each output (the release Parquet of one cap, the WebDataset tars, the MDS groups) is a set
of shards whose ids are never reused, so a file name never holds other bytes (caching
readers stay right). One task writes a shard whole (udfs/shard_files.py) with a sidecar
`_index/<output>/NNNNN.parquet`: the (image_id, row hash) of its rows, the hash taken over
the values its files hold of the row. The next export joins the output's rows to the
sidecars (one full outer join, one aggregate):
- a shard whose rows are all still there unchanged is left alone (its files untouched);
- a shard with a changed or deleted row is written again under a new id with the rows it
  still has (none: it is dropped);
- new rows go to new shards of the output's target size.
`<export>/manifest.json` names every live file per output (rows, bytes, sha256), the
shards' ledgers, the target rows per shard and the settings fingerprint.

An output is built whole (every shard written again, ids continuing) when there is no
complete earlier export with a manifest, under `--full-refresh`, when its settings or the
code that writes its files changed (the fingerprint), when a file the manifest names is
missing or has another size, or when its live shards outnumber FRAGMENTATION times what a
full build writes (increments of a few rows each add small shards; deletions thin them).

All or nothing: new files are staged in `<export>/.staging/`, and `manifest.json` is written
there last, so a complete staging is one that has it. The swap writes `_INCOMPLETE`, moves
the staged files in, deletes the managed files the new manifest does not name, moves the
manifest in, writes `_SUCCESS`, removes `_INCOMPLETE` and then the staging. A run killed before its staged
manifest leaves the previous export whole (the staging is thrown away); one killed in the
swap leaves `_INCOMPLETE` beside a complete staging, and the next export finishes that swap
first (the swap is idempotent), then updates from it.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from realsyn.jobs.core import module_graph
from realsyn.jobs.core.stage import Ledger
from realsyn.udfs import object_files
from realsyn.udfs.shard_files import RESULT_DDL, ROW_HASH, SHARD, write_shards

FORMAT = 1
MANIFEST, STAGING, INCOMPLETE, SUCCESS, INDEX = "manifest.json", ".staging", "_INCOMPLETE", "_SUCCESS", "_index"
FRAGMENTATION = 2
SIDECAR_DDL = "image_id string, h long, shard long"


def managed(name: str) -> bool:
    """A top-level entry of the export folder that export writes (others are the user's)."""
    return (name.startswith("realsyn_cap") or name in ("webdataset", "mds", INDEX, "README.md")
            or name.endswith(".png"))


def row_hash(columns) -> Column:
    """64-bit hash of what a file holds of a row. Spark's hash skips a null, so each value's
    null flag goes in too: (null, "a") and ("a", null) differ."""
    return F.xxhash64(*[x for c in columns for x in (F.col(c), F.col(c).isNull())])


def code_hash(items) -> str:
    """Behaviour hash of the code that decides an output's files: a module name (with what
    it imports, the runtime left out) or a function (its own body)."""
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, str):
            h.update(module_graph.work_code_hash(item).encode())
        else:
            h.update(module_graph.behaviour(ast.parse(textwrap.dedent(inspect.getsource(item)))).encode())
    return h.hexdigest()[:16]


@dataclass
class ShardedOutput:
    """One output of the export. `rows`: one row per image_id with the columns the files
    hold; `content`: the columns hashed per row; `order`: the row order inside a file;
    `sink`: the udfs/shard_files sink factory; `settings` and `code`: what decides the files
    (a change builds the output whole); the target shard size: `rows_per_shard`, or
    `shard_bytes` over the mean of `row_bytes`; `prepare`: what only written rows need (the
    image bytes); `finish(entry)`: files beside the shards, name -> (bytes, rows)."""

    name: str
    ledger: str
    rows: DataFrame
    content: tuple[str, ...]
    order: tuple[str, ...]
    sink: Callable
    settings: dict
    code: tuple = ()
    rows_per_shard: int = 0
    shard_bytes: int = 0
    row_bytes: Column | None = None
    prepare: Callable[[DataFrame], DataFrame] | None = None
    finish: Callable[[dict], dict] | None = None
    profile: Any = None

    def fingerprint(self) -> str:
        body = {"settings": self.settings, "content": list(self.content), "order": list(self.order),
                "code": code_hash((*self.code, "realsyn.udfs.shard_files", "realsyn.jobs.lib.export_shards"))}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Plan:
    to_write: DataFrame
    base: int                 # the shards written get ids base .. base + count - 1
    count: int
    kept: dict                # id -> manifest entry of the shards left alone
    rows: int
    rows_per_shard: int
    changed: bool             # shards written or dropped


@dataclass
class Staged:
    entry: dict               # the output's manifest entry
    ledger: Ledger
    written: list[str] = field(default_factory=list)   # files staged this run
    why: str = "increment"


def live_files(entry: dict) -> dict[str, dict]:
    """Every file of an output the manifest names (data, sidecars, files beside) -> its record."""
    out = dict(entry["files"])
    out.update({s["sidecar"]["path"]: s["sidecar"] for s in entry["shards"].values()})
    return out


def _full_plan(rows: DataFrame, out: ShardedOutput, first: int) -> _Plan:
    size = rows.agg(F.count(F.lit(1)).alias("n"),
                    (F.avg(out.row_bytes) if out.row_bytes is not None else F.lit(None)).alias("b")).first()
    n = int(size["n"])
    per = out.rows_per_shard or max(1, int(out.shard_bytes // max(1.0, float(size["b"] or 1.0))))
    k = -(-n // per)
    to_write = rows.withColumn(SHARD, F.lit(first) + F.pmod(F.xxhash64("image_id"), F.lit(max(k, 1))))
    return _Plan(to_write, first, k, {}, n, per, True)


def _increment_plan(spark, rows: DataFrame, final: str, previous: dict) -> _Plan | None:
    shards = previous["shards"]
    paths = [object_files.join(final, s["sidecar"]["path"]) for s in shards.values()]
    old = spark.read.schema(SIDECAR_DDL).parquet(*paths) if paths else spark.createDataFrame([], SIDECAR_DDL)
    joined = rows.join(old.select("image_id", F.col("h").alias("_old_h"), F.col("shard").alias("_old")),
                       "image_id", "full_outer")
    changed = F.col(ROW_HASH).isNull() | F.col("_old_h").isNull() | (F.col(ROW_HASH) != F.col("_old_h"))
    stats = {r["_old"]: (int(r["now"]), int(r["changed"])) for r in joined.groupBy("_old").agg(
        F.count(ROW_HASH).alias("now"), F.count(F.when(changed, 1)).alias("changed")).collect()}
    n_new = stats.pop(None, (0, 0))[0]
    total = n_new + sum(now for now, _ in stats.values())
    dirty = sorted(s for s, (_, c) in stats.items() if c)
    remade = [s for s in dirty if stats[s][0]]
    per, base = int(previous["rows_per_shard"]), int(previous["next_shard"])
    k_new = -(-n_new // per)
    count = len(remade) + k_new
    if len(stats) - len(dirty) + count > FRAGMENTATION * max(1, -(-total // per)):
        return None
    # The remade shards take ids base.. in the order of their old ids; new rows the ids after.
    remap = spark.createDataFrame([(s, base + i) for i, s in enumerate(remade)], "_old long, _new long")
    new_id = F.lit(base + len(remade)) + F.pmod(F.xxhash64("image_id"), F.lit(max(k_new, 1)))
    to_write = (joined.where(F.col(ROW_HASH).isNotNull()).join(F.broadcast(remap), "_old", "left")
                .where(F.col("_old").isNull() | F.col("_new").isNotNull())
                .withColumn(SHARD, F.coalesce(F.col("_new"), new_id)).drop("_old", "_old_h", "_new"))
    kept = {sid: s for sid, s in shards.items() if int(sid) in stats and int(sid) not in dirty}
    return _Plan(to_write, base, count, kept, total, per, bool(count or dirty))


def write_shard_files(df: DataFrame, base: int, count: int, order, sink, folder: str,
                      index_folder: str | None, profile=None) -> list:
    """One task per shard id in base .. base + count - 1 (`_shard`), rows in `order`; the
    result rows of udfs/shard_files.write_shards."""
    part = (F.col(SHARD) - F.lit(base)).cast("int")
    spread = df.repartitionById(count, part) if hasattr(df, "repartitionById") else df.repartition(count, SHARD)
    return (spread.sortWithinPartitions(SHARD, *order)
            .mapInArrow(write_shards(folder, index_folder, sink), RESULT_DDL, profile=profile).collect())


def stage_output(spark, out: ShardedOutput, final: str, previous: dict | None, why: str | None) -> Staged:
    """Stage the output's new shards under `<final>/.staging/`; returns its manifest entry.
    `previous`: its entry in the last manifest; `why`: the reason to build it whole, or None
    to update it."""
    staging = object_files.join(final, STAGING)
    rows = out.rows.withColumn(ROW_HASH, row_hash(out.content))
    plan = _increment_plan(spark, rows, final, previous) if why is None and previous is not None else None
    if why is None and plan is None:
        why = f"more than {FRAGMENTATION}x the shards a full build writes"
    if plan is None:
        plan = _full_plan(rows, out, int(previous["next_shard"]) if previous else 0)
    results = []
    if plan.count:
        df = out.prepare(plan.to_write) if out.prepare else plan.to_write
        results = write_shard_files(df, plan.base, plan.count, out.order, out.sink,
                                    object_files.join(staging, out.name),
                                    object_files.join(staging, INDEX, out.name), out.profile)
    shards = dict(plan.kept)
    files = {p: f for p, f in (previous or {}).get("files", {}).items() if str(f.get("shard")) in shards}
    written = []
    for r in results:
        sid = str(r["shard"])
        for name, record in json.loads(r["files"]).items():
            files[f"{out.name}/{name}"] = {**record, "shard": int(sid)}
            written.append(f"{out.name}/{name}")
        (side_name, side), = json.loads(r["sidecar"]).items()
        sidecar = {**side, "path": f"{INDEX}/{out.name}/{side_name}"}
        written.append(sidecar["path"])
        shards[sid] = {"rows": int(r["rows_in"]), "written": int(r["written"]), "rejected": json.loads(r["rejected"]),
                       "sidecar": sidecar, "extra": json.loads(r["extra"])}
    held = sum(s["rows"] for s in shards.values())
    if held != plan.rows:
        raise RuntimeError(f"export: the shards of {out.name} hold {held} rows, the output has {plan.rows}")
    entry: dict[str, Any] = {"settings": out.fingerprint(), "rows_per_shard": plan.rows_per_shard,
             "next_shard": plan.base + plan.count, "rows": plan.rows, "files": files,
             "shards": dict(sorted(shards.items(), key=lambda kv: int(kv[0])))}
    if out.finish is not None:
        if plan.changed or previous is None:
            for name, (data, n) in out.finish(entry).items():
                path = f"{out.name}/{name}"
                put(spark, object_files.join(staging, path), data)
                entry["files"][path] = {"rows": n, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                        "shard": None}
                written.append(path)
        else:
            entry["files"].update({p: f for p, f in previous["files"].items() if f.get("shard") is None})
    rejected: dict[str, int] = {}
    for s in shards.values():
        for reason, n in s["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + n
    ledger = Ledger(out.ledger, plan.rows, sum(s["written"] for s in shards.values()), rejected)
    entry.update(written=ledger.kept, rejected=rejected)
    return Staged(entry, ledger, written, why or "increment")


def rebuild_reason(out: ShardedOutput, previous: dict | None, present: dict[str, int], full_refresh: bool) -> str | None:
    """Why the output is built whole this time, or None: it is updated."""
    if previous is None:
        return "no complete earlier export of it"
    if full_refresh:
        return "--full-refresh"
    if previous.get("settings") != out.fingerprint():
        return "its settings or the code writing it changed"
    gone = [p for p, f in live_files(previous).items() if present.get(p) != f["bytes"]]
    if gone:
        return f"{len(gone)} of its files missing or of another size"
    return None


def export_outputs(spark, outputs: list[ShardedOutput], final: str, run_id: str, full_refresh: bool = False,
                   say: Callable[[str], None] = print) -> tuple[dict, list[Ledger]]:
    """Stage every output's new files; returns the new manifest (not yet written) and the
    writers' ledgers. Finishes a swap a killed run left half done first."""
    finish_swap(spark, final, say)
    object_files.remove_tree(object_files.join(final, STAGING))      # a killed run's leftovers
    previous = read_manifest(spark, final)
    present = list_files(spark, final) if previous else {}
    manifest: dict = {"format": FORMAT, "run": run_id, "outputs": {}}
    ledgers = []
    for out in outputs:
        before = (previous or {}).get("outputs", {}).get(out.name)
        staged = stage_output(spark, out, final, before, rebuild_reason(out, before, present, full_refresh))
        manifest["outputs"][out.name] = staged.entry
        ledgers.append(staged.ledger)
        data = [p for p in staged.written if not p.startswith(INDEX + "/")]
        say(f"[export] {out.name}: {len(data)} of {len(staged.entry['files'])} files written ({staged.why})")
    return manifest, ledgers


# --- the swap -------------------------------------------------------------------------

def _fs(spark, uri: str):
    path = spark._jvm.org.apache.hadoop.fs.Path
    return path(uri).getFileSystem(spark._jsc.hadoopConfiguration()), path


def put(spark, uri: str, data: bytes) -> None:
    """Write a small file from the driver (no .crc beside it on a local disk)."""
    fs, path = _fs(spark, uri)
    fs.setWriteChecksum(False)       # the FileSystem is shared: restored
    try:
        stream = fs.create(path(uri), True)
        stream.write(bytearray(data))
        stream.close()
    finally:
        fs.setWriteChecksum(True)


def _walk(fs, path, rel: str, out: dict) -> None:
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        sub = f"{rel}/{name}" if rel else name
        if status.isDirectory():
            _walk(fs, status.getPath(), sub, out)
        else:
            out[sub] = int(status.getLen())


def list_files(spark, final: str) -> dict[str, int]:
    """Files under the export's managed entries -> size."""
    fs, path = _fs(spark, final)
    out: dict[str, int] = {}
    if not fs.exists(path(final)):
        return out
    for status in fs.listStatus(path(final)):
        name = status.getPath().getName()
        if managed(name):
            if status.isDirectory():
                _walk(fs, status.getPath(), name, out)
            else:
                out[name] = int(status.getLen())
    return out


def read_manifest(spark, final: str) -> dict | None:
    """The manifest of the last export that finished, or None."""
    fs, path = _fs(spark, final)
    if (fs.exists(path(object_files.join(final, INCOMPLETE))) or not fs.exists(path(object_files.join(final, SUCCESS)))
            or not fs.exists(path(object_files.join(final, MANIFEST)))):
        return None
    manifest = json.loads(object_files.read_bytes(object_files.join(final, MANIFEST)))
    return manifest if manifest.get("format") == FORMAT else None


def commit(spark, final: str, manifest: dict, card: list[str], summary: dict) -> None:
    """Write the staged manifest (the staging is then complete) and swap it in."""
    manifest = {**manifest, "card": sorted(card), "summary": summary}
    put(spark, object_files.join(final, STAGING, MANIFEST), json.dumps(manifest, sort_keys=True, indent=1).encode())
    swap(spark, final)


def finish_swap(spark, final: str, say: Callable[[str], None] = print) -> bool:
    """Finish the swap of a run killed in it (`_INCOMPLETE` beside a complete staging)."""
    fs, path = _fs(spark, final)
    if fs.exists(path(object_files.join(final, INCOMPLETE))) and fs.exists(path(object_files.join(final, STAGING, MANIFEST))):
        say(f"[export] finishing the swap a killed run left in {final}")
        swap(spark, final)
        return True
    return False


def live_paths(manifest: dict) -> set[str]:
    """Every file the export holds under this manifest (the manifest itself and markers aside)."""
    live = set(manifest.get("card", []))
    for entry in manifest["outputs"].values():
        live.update(live_files(entry))
    return live


def _move(fs, source, target) -> None:
    if fs.exists(target):
        fs.delete(target, False)
    fs.mkdirs(target.getParent())
    if not fs.rename(source, target):   # Hadoop says no by returning false
        raise OSError(f"export: could not move {source} to {target}; {INCOMPLETE} stays until a rerun finishes")


def swap(spark, final: str) -> None:
    """Make `final` hold exactly what the staged manifest names: move the staged files in,
    delete the managed files it does not name (a cap removed, WebDataset turned off, a shard
    remade or dropped), then the manifest and `_SUCCESS`. Idempotent, so a run killed in it
    is finished by running it again."""
    staging = object_files.join(final, STAGING)
    fs, path = _fs(spark, final)
    raw = object_files.read_bytes(object_files.join(staging, MANIFEST))
    manifest = json.loads(raw)
    live = live_paths(manifest)
    put(spark, object_files.join(final, INCOMPLETE), f"run {manifest['run']} is replacing these files; until "
        "_SUCCESS appears they may disagree with manifest.json and README.md\n".encode())
    fs.delete(path(object_files.join(final, SUCCESS)), False)
    staged: dict[str, int] = {}
    _walk(fs, path(staging), "", staged)
    for rel in sorted(staged):
        if rel not in live:
            continue                           # the manifest, a failed task's temporary files
        _move(fs, path(object_files.join(staging, rel)), path(object_files.join(final, rel)))
    folders = {"/".join(p.split("/")[:i]) for p in live for i in range(1, p.count("/") + 1)}

    def prune(dir_path, rel: str) -> None:
        for status in fs.listStatus(dir_path):
            sub = f"{rel}/{status.getPath().getName()}" if rel else status.getPath().getName()
            if status.isDirectory():
                if sub in folders:
                    prune(status.getPath(), sub)
                else:
                    fs.delete(status.getPath(), True)
            elif sub not in live:
                fs.delete(status.getPath(), False)

    for status in fs.listStatus(path(final)):
        name = status.getPath().getName()
        if managed(name) and name not in live and name not in folders:
            fs.delete(status.getPath(), True)
        elif managed(name) and status.isDirectory():
            prune(status.getPath(), name)
    # Written, not moved: the staged manifest stays until _INCOMPLETE is gone, so a run
    # killed up to then is finished by the next.
    put(spark, object_files.join(final, MANIFEST), raw)
    put(spark, object_files.join(final, SUCCESS), (json.dumps(manifest.get("summary", {"run": manifest["run"]}),
                                                              sort_keys=True) + "\n").encode())
    fs.delete(path(object_files.join(final, INCOMPLETE)), False)
    fs.delete(path(staging), True)

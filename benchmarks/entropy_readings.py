"""Which reading of the paper's entropy filter theta(x) = -sum p(x_i) log p(x_i) keeps real prose
and rejects degenerate text. Measured on real documentation (debian-handbook, installed by
.ci/run): the English pages alone, the same pages in every installed language at once, and
planted degenerate sentences (repetitions, boilerplate, keyword lists, token salad).

The sentences scored are those the pipeline keeps with the entropy and perplexity filters
off (its own splitter, dedup, emoji / URL / word-count filters), read from silver.sentences.
Prints one table row per reading (rejection rate by sentence length, overall, of the same
English sentences within the multilingual corpus, and of each planted kind), then
`RESULT ...` for the reading the pipeline uses.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.corpora.doc_corpus import CorpusMissing, write_corpus  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.core.tables import TableStore  # noqa: E402
from realsyn.udfs.sentence_entropy import normalised_entropy, tokens  # noqa: E402

LENGTHS = [(3, 5), (6, 8), (9, 12), (13, 20), (21, 40), (41, 81)]
REPETITIONS = [
    "buy now buy now buy now buy now buy now buy now", "la la la la la la la la la la",
    "very very very very very very very good", "test test test test test test test test",
    "no no no no no no no no no no no no", "click click click click click click here",
    "sale sale sale sale sale sale sale sale sale", "the the the the the the the the",
    "free free free free free download free free free free", "yes " * 19 + "yes",
    "Best price best price best price best price best price best price.",
    "Ha ha ha ha ha ha ha ha ha ha ha ha ha ha ha ha.",
]
BOILERPLATE = [
    "All rights reserved.", "Copyright 2024 Example Inc. All rights reserved.", "Click here to subscribe.",
    "Skip to main content.", "Terms of use and privacy policy.", "Share this article on social media.",
    "Add to cart now.", "Sign in to continue reading.", "Previous page next page.",
    "This page intentionally left blank.", "Please enable JavaScript to view the comments.",
    "Read more about cookies in our privacy policy.",
]
KEYWORDS = [
    "debian ubuntu linux kernel apt dpkg package repository mirror",
    "cheap flights hotels car rental deals booking discount", "wedding dress bridal gown lace white elegant vintage",
    "laptop notebook computer gaming ultrabook intel amd ssd", "recipes dinner vegan healthy quick easy chicken pasta",
    "shoes sneakers boots sandals running women men kids", "Tags: travel, beach, summer, holiday, sun, sea, vacation",
    "hotel spa resort pool luxury suite breakfast wifi parking", "python java rust golang javascript typescript kotlin",
    "jazz blues rock pop metal folk soul funk disco", "Categories: news, sports, weather, politics, business",
    "garden tools shovel rake hose gloves seeds soil compost",
]


def token_salad(rng: random.Random, n: int = 12) -> list[str]:
    """Strings of made-up words, 4-20 of them: no word is in any corpus."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [" ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(4, 20)))
            for _ in range(n)]


def shannon(toks: list[str], log=math.log) -> float:
    n = len(toks)
    return -sum((c / n) * log(c / n) for c in Counter(toks).values()) if n else 0.0


def readings(counts: Counter, total: int) -> list[tuple[str, object]]:
    """(name, tokens -> theta) for each reading; p from the corpus uses `counts` / `total`."""
    def corpus(toks, distinct=False, mean=False, log=math.log):
        ws = set(toks) if distinct else toks
        s = sum(-(counts[w] / total) * log(counts[w] / total) for w in ws if counts[w])
        return s / len(toks) if mean and toks else s

    def within_tokens(toks):   # -sum over token positions of p(x_i) log p(x_i), p in the sentence
        n, c = len(toks), Counter(toks)
        return -sum((c[w] / n) * math.log(c[w] / n) for w in toks) if n else 0.0

    return [
        ("corpus p, tokens, sum, ln (old code)", lambda t: corpus(t)),
        ("corpus p, tokens, sum, log2", lambda t: corpus(t, log=math.log2)),
        ("corpus p, tokens, sum, log10", lambda t: corpus(t, log=math.log10)),
        ("corpus p, distinct words, sum, ln", lambda t: corpus(t, distinct=True)),
        ("corpus p, tokens, mean per token, ln", lambda t: corpus(t, mean=True)),
        ("sentence p, distinct words, ln (Shannon H)", lambda t: shannon(t)),
        ("sentence p, distinct words, log2", lambda t: shannon(t, math.log2)),
        ("sentence p, token positions, ln", within_tokens),
        ("sentence p, H / n (mean per token)", lambda t: shannon(t) / len(t) if t else 0.0),
        ("sentence p, H / ln n (normalised; chosen)", lambda t: normalised_entropy(" ".join(t))),
    ]


def pipeline_sentences(corpus_dir: str, work: str):
    """Every distinct sentence of silver.sentences with the entropy and perplexity filters off
    (rows, and the table itself)."""
    cfg = load_config("local", overrides=[
        f"run.work_dir={work}", f"run.input={corpus_dir}/obelics/*.parquet", "spark.master=local[2]",
        "spark.progress_bar=false", "mlflow.enabled=false", "sentences.entropy_min=0.0",
        "sentences.perplexity_filter=false"])
    run_stages(cfg, ["ingest", "extract_sentences"], say=lambda *_: None)
    from realsyn.jobs.core.session import get_spark
    table = TableStore(get_spark(cfg), cfg).read("silver.sentences")
    return table.select("sentence_id", "text", "n_words", "n_occurrences", "status").toArrow().to_pylist(), table


def sql_entropy():
    """The chosen score as built-in SQL (higher-order functions, O(words x distinct words))."""
    from pyspark.sql import functions as F
    toks = F.filter(F.split(F.lower("text"), r"[^\p{L}\p{N}']+"), lambda t: t != "")
    n = F.size(toks)
    count = lambda w: F.size(F.filter(toks, lambda t: t == w))  # noqa: E731
    h = F.aggregate(F.array_distinct(toks), F.lit(0.0), lambda acc, w: acc - (count(w) / n) * F.ln(count(w) / n))
    return F.when(n < 2, F.lit(0.0)).otherwise(F.greatest(F.lit(0.0), h / F.ln(n)))


def udf_over_sql(table) -> tuple[float, float]:
    """Seconds of the pandas UDF over seconds of the SQL expression, summing the score over the
    same sentences (each side run twice, alternating; the second runs count); and the largest
    difference between the two scores."""
    import time
    from pyspark.sql import functions as F
    from realsyn.jobs.lib.sentence_filters import word_entropy
    df = table.select("text").repartition(2).cache()
    df.count()
    sides = {"udf": word_entropy(F.col("text")), "sql": sql_entropy()}
    took = {}
    for _ in range(2):
        for name, expr in sides.items():
            t0 = time.perf_counter()
            df.select(F.sum(expr)).first()
            took[name] = time.perf_counter() - t0
    diff = df.select(F.max(F.abs(sides["udf"] - sides["sql"]))).first()[0]
    df.unpersist()
    return took["udf"] / took["sql"], diff


def corpus_counts(rows: list[dict]) -> tuple[Counter, int]:
    counts = Counter()
    for r in rows:
        for w in tokens(r["text"]):
            counts[w] += r["n_occurrences"]
    return counts, sum(counts.values())


def bucket(n_words: int) -> str:
    return next(f"{lo}-{hi}" for lo, hi in LENGTHS if lo <= n_words <= hi)


def rate(scores: list[float], threshold: float) -> str:
    return f"{sum(s < threshold for s in scores) / len(scores):.1%}" if scores else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--english", default="en-US")
    ap.add_argument("--languages", nargs="*", help="the multilingual corpus (default: every installed one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(f"{tmp}/en", [args.english])
        info = write_corpus(f"{tmp}/all", args.languages)
        en_rows, _ = pipeline_sentences(f"{tmp}/en", f"{tmp}/en-work")
        all_rows, all_table = pipeline_sentences(f"{tmp}/all", f"{tmp}/all-work")
        ratio, max_diff = udf_over_sql(all_table)
    rng = random.Random(5)
    planted = {"repetition": REPETITIONS, "boilerplate": BOILERPLATE, "keywords": KEYWORDS, "salad": token_salad(rng)}
    en_kept = [r for r in en_rows if r["status"] == "kept"]
    en_ids = {r["sentence_id"] for r in en_kept}
    all_kept = [r for r in all_rows if r["status"] == "kept"]
    mixed_en = [r for r in all_kept if r["sentence_id"] in en_ids]
    # Planted sentences join the English corpus once each, as one more document would.
    en_counts, en_total = corpus_counts(en_rows + [{"text": s, "n_occurrences": 1} for v in planted.values() for s in v])
    all_counts, all_total = corpus_counts(all_rows)
    n_langs = len(info["documents"])
    print(f"English: {len(en_rows)} distinct sentences, {len(en_kept)} pass the other filters; "
          f"{n_langs} languages: {len(all_rows)} distinct sentences; threshold {args.threshold}")
    header = ["reading"] + [f"{lo}-{hi} words" for lo, hi in LENGTHS] + [
        "all EN", f"EN within {n_langs} languages", f"all {n_langs} languages"] + list(planted)
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    mixed_readings = dict(readings(all_counts, all_total))
    for name, theta in readings(en_counts, en_total):
        by_len: dict[str, list[float]] = {f"{lo}-{hi}": [] for lo, hi in LENGTHS}
        scores = []
        for r in en_kept:
            s = theta(tokens(r["text"]))
            by_len[bucket(r["n_words"])].append(s)
            scores.append(s)
        mixed = [mixed_readings[name](tokens(r["text"])) for r in mixed_en]
        every = [mixed_readings[name](tokens(r["text"])) for r in all_kept]
        cells = [rate(v, args.threshold) for v in by_len.values()] + [
            rate(scores, args.threshold), rate(mixed, args.threshold), rate(every, args.threshold)]
        cells += [rate([theta(tokens(s)) for s in v], args.threshold) for v in planted.values()]
        print("| " + " | ".join([name] + cells) + " |")
    chosen = [normalised_entropy(r["text"]) for r in en_kept]
    mixed = [normalised_entropy(r["text"]) for r in mixed_en]
    print("chosen reading, English prose rejected by threshold: " + ", ".join(
        f"{t:g}: {rate(chosen, t)}" for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)))
    print("chosen reading, repetitions rejected by threshold: " + ", ".join(
        f"{t:g}: {rate([normalised_entropy(s) for s in REPETITIONS], t)}" for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)))
    rep = [normalised_entropy(s) for s in REPETITIONS]
    low = sum(s < args.threshold for s in chosen)
    every = [normalised_entropy(r["text"]) for r in all_kept]
    print(f"chosen reading at {args.threshold}: {low} of {len(chosen)} English sentences rejected, "
          f"{sum(s < args.threshold for s in every)} of {len(every)} in {n_langs} languages")
    print(f"pandas UDF over SQL expression, same {len(all_rows)} sentences: {ratio:.2f} "
          f"(largest difference between their scores: {max_diff:.2g})")
    print(f"RESULT en_sentences={len(en_kept)} en_rejected={sum(s < args.threshold for s in chosen) / len(chosen):.4f} "
          f"en_within_mixed_rejected={sum(s < args.threshold for s in mixed) / max(1, len(mixed)):.4f} "
          f"repetitions_rejected={sum(s < args.threshold for s in rep) / len(rep):.2f} udf_over_sql={ratio:.2f}")


if __name__ == "__main__":
    try:
        main()
    except CorpusMissing as err:
        raise SystemExit(f"entropy_readings: {err}") from None

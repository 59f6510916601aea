"""The dataset card next to the export: README.md and its figures (PNG).

Pure rendering over small, already aggregated inputs (counts, histograms, a few sample
images), so it is testable without Spark. matplotlib runs on the Agg backend: no display.
"""
from __future__ import annotations

import json
import re
import textwrap

import numpy as np

from realsyn.udfs.funnel import paper_comparison

CARD_JSON = re.compile(r"```json\n(.*?)\n```", re.S)


def pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path: str) -> str:
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return path


def cluster_size_png(path: str, sizes: np.ndarray, capped: dict[int, np.ndarray]) -> str:
    """Histogram of cluster sizes before balancing and after each cap t (log-spaced bins)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = np.asarray(sizes)
    top = max(2, int(sizes.max()) if len(sizes) else 2)
    bins = np.unique(np.geomspace(1, top + 1, 40).astype(int))
    if len(bins) < 2:
        bins = np.array([1, 2])
    ax.hist(sizes, bins=bins, histtype="stepfilled", alpha=0.35, label="before balancing")
    for cap, after in sorted(capped.items()):
        ax.hist(np.asarray(after), bins=bins, histtype="step", linewidth=1.5, label=f"after cap t={cap}")
    ax.set_xscale("log")
    ax.set_xlabel("images per cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"Cluster sizes ({len(sizes)} clusters)")
    ax.legend()
    return save_png(fig, path)


def similarity_png(path: str, edges: np.ndarray, counts: np.ndarray, window: tuple[float, float]) -> str:
    """Histogram of image / synthetic-text cosine with the kept window shaded."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    edges, counts = np.asarray(edges, float), np.asarray(counts, float)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
    lo, hi = window
    ax.axvspan(max(lo, edges[0]), min(hi, edges[-1]), color="tab:green", alpha=0.15,
               label=f"kept window [{lo:g}, {hi:g}]")
    ax.set_xlabel("cosine(image, synthetic text)")
    ax.set_ylabel("pairs")
    ax.set_title(f"Image-text similarity ({int(counts.sum())} pairs)")
    ax.legend()
    return save_png(fig, path)


def _caption(texts: list[tuple[str, str | None]], width: int = 34, lines_each: int = 3) -> str:
    out = []
    for label, text in texts:
        wrapped = textwrap.wrap(f"{label}: {text or ''}", width) or [f"{label}:"]
        if len(wrapped) > lines_each:
            wrapped = wrapped[:lines_each - 1] + [wrapped[lines_each - 1][:width - 3] + "..."]
        out += wrapped
    return "\n".join(out)


def sample_grid_png(path: str, samples: list[dict], cols: int = 4, thumb: int = 160) -> str:
    """A grid of sample images, each with its text1 and syn_text underneath.

    samples: dicts with `bytes` (encoded image), `text1`, `syn_text`. Texts come from the
    corpus: math parsing is off so a `$` prints as itself."""
    from realsyn.udfs.image_decode import open_rgb
    plt = pyplot()
    n = max(1, len(samples))
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, samples):
        try:
            img = open_rgb(s["bytes"], thumb)
            img.thumbnail((thumb, thumb))
            ax.imshow(np.asarray(img))
        except Exception:   # an undecodable sample still gets its texts
            ax.text(0.5, 0.5, "(image not decodable)", ha="center", transform=ax.transAxes)
        ax.set_title(_caption([("text1", s.get("text1")), ("syn", s.get("syn_text"))]),
                     fontsize=7, loc="left", y=-0.02, va="top", parse_math=False, wrap=False)
    if not samples:
        axes.flat[0].text(0.5, 0.5, "(no samples)", ha="center", transform=axes.flat[0].transAxes)
    fig.tight_layout()
    return save_png(fig, path)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _count(n) -> str:
    return "-" if n is None else f"{n:,}"


def _share(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def paper_funnel_lines(stages: list[dict]) -> list[str]:
    """Each of the paper's filter steps: its rows and share removed, this run's beside them."""
    lines = []
    for kind, rows in paper_comparison(stages).items():
        lines += ["", f"### {kind.capitalize()}", ""]
        table = []
        for r in rows:
            gap = (None if r["paper_removed"] is None or r["ours_removed"] is None
                   else (r["ours_removed"] - r["paper_removed"]) * 100)
            table.append([r["label"], _count(r["paper"]), _share(r["paper_removed"]), _count(r["ours"]),
                          _share(r["ours_removed"]), "-" if gap is None else f"{gap:+.1f}"])
        lines += _table(["step", "paper rows", "paper removes", "this run rows", "this run removes",
                         "difference (points)"], table)
    return lines


TRUTH_ROWS = (("text1", "text1 (closest retrieved sentence)"), ("text1-3", "text1-3 (every retrieved sentence)"),
              ("syn_text", "syn_text (synthetic)"), ("neighbouring_text", "neighbouring text (baseline)"))


def truth_lines(truth: dict) -> list[str]:
    """The card's section on a world's ground truth (jobs/world/truth_report.py)."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"
    lines = ["", "## Against the ground truth", "",
             "Attribute precision: the share of the (colour, shape) concepts a text names that its image "
             "holds, averaged over pairs; a text naming none scores 0. The baseline pairs each image with "
             "the text next to it in its document.", ""]
    return lines + _table(["text", "pairs", "attribute precision", "names a concept"],
                          [[label, truth[k]["pairs"], pct(truth[k]["precision"]), pct(truth[k]["names_a_concept"])]
                           for k, label in TRUTH_ROWS if k in truth])


def coverage_lines(cov: dict) -> list[str]:
    """The card's concept coverage (jobs/world/coverage.py): the pool, then each subset beside
    random subsets of its size (mean ± sd over seeds)."""
    def cell(value, fmt, rnd=None, rnd_fmt=None):
        rnd_fmt = rnd_fmt or fmt
        got = fmt.format(value)
        return got if rnd is None else f"{got} ({rnd_fmt.format(rnd[0])} ± {rnd_fmt.format(rnd[1])})"
    ref, purity = cov["reference"], cov["purity"]
    lines = ["", "### Concept coverage", "",
             "How evenly the pairs cover the world's concepts: normalised concept entropy (1 = flat), the "
             f"share of pairs holding the pool's most frequent concept ({ref['head']}), concepts covered, and the "
             f"share of pairs holding the pool's rarest {len(ref['rare'])} of its {ref['concepts']} concepts. "
             f"In brackets: random subsets of the same size (mean ± sd over {cov['seeds']} seeds). "
             "Image clusters' purity (mean share of a cluster's pairs holding its most common concept): "
             + ("-" if purity is None else f"{100 * purity:.1f}%") + ".", ""]
    rows = [["pool", cov["pool"]["pairs"], cell(cov["pool"]["entropy"], "{:.3f}"),
             cell(100 * cov["pool"]["head_share"], "{:.1f}%"), cov["pool"]["covered"],
             cell(100 * cov["pool"]["rare_share"], "{:.1f}%")]]
    for cap, got in sorted(cov["subsets"].items(), key=lambda x: int(x[0])):
        s, r = got["subset"], got["random"] or {}
        pct = {m: [100 * v for v in r[m]] if m in r else None for m in ("head_share", "rare_share")}
        rows.append([f"cap {cap}", s["pairs"], cell(s["entropy"], "{:.3f}", r.get("entropy")),
                     cell(100 * s["head_share"], "{:.1f}%", pct["head_share"]),
                     cell(s["covered"], "{:.0f}", r.get("covered"), "{:.1f}"),
                     cell(100 * s["rare_share"], "{:.1f}%", pct["rare_share"])])
    return lines + _table(["pairs of", "pairs", "entropy", "head share", "concepts", "rare share"], rows)


def sentence_dedup_lines(dd: dict) -> list[str]:
    """The card's semantic sentence dedup against the truth (jobs/world/dedup_truth.py): the
    run's removals, then what each threshold over the stored scores would remove."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    def kinds(row):
        return [pct(row["same_scene"]), pct(row["different_scene"]), pct(row["other_prose"])]
    removed = dd["removed"]
    lines = ["", "### Semantic sentence dedup", "",
             f"Of the {dd['scored']} sentences semantic dedup scored, this run removed {removed['n']}. A removed "
             "sentence against the one it stands for: the same scene stated again (a true duplicate), a "
             "different scene (a distinct description lost), or other prose (either names no coloured shape). "
             "Below, each threshold over the stored scores: the share of sentences it removes and the same "
             "split of its links.", ""]
    rows = [["this run", pct(removed["n"] / dd["scored"] if dd["scored"] else None), removed["n"], *kinds(removed)]]
    rows += [[f"≥ {r['threshold']}", pct(r["removed_share"]), r["n"], *kinds(r)] for r in dd["curve"]]
    return lines + _table(["threshold", "removes", "sentences", "same scene", "different scene", "other prose"],
                          rows)


def sentence_filter_lines(sf: dict) -> list[str]:
    """The card's sentence filters against the truth (jobs/world/filter_truth.py): per class of
    sentence the world wrote, how many reached the pool, were kept, and which step removed the rest."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"
    seen = {s for r in sf["classes"] for s in r["removed_by"]}
    steps = [s for s in sf.get("steps", []) if s in seen] + sorted(seen - set(sf.get("steps", [])))
    lines = ["", "### Sentence filters", "",
             f"Distinct sentences by what the world wrote: its descriptions, each kind of sentence it planted "
             f"for a filter to reject, and other page prose. Descriptions kept: {pct(sf['descriptions_kept'])}; "
             f"planted junk removed: {pct(sf['junk_removed'])} (by the perplexity step: "
             f"{pct(sf['junk_removed_by_perplexity'])}). 'written' counts distinct sentences the world wrote, "
             "'found' those the splitter gave back whole.", ""]
    rows = [[r["class"], "-" if r["planted"] is None else r["planted"], r["found"], r["kept"],
             *[r["removed_by"].get(s, 0) for s in steps]] for r in sf["classes"]]
    return lines + _table(["sentence", "written", "found", "kept", *[f"removed: {s}" for s in steps]], rows)


def card_markdown(data: dict, figures: dict[str, str]) -> str:
    """README.md text. data: subsets {cap: pairs}, gold_rows, stages [{stage, ledger, in,
    kept, rejected{}}], tables {name: {rows, kept}}, files [lines], run, config_hash. The same numbers end
    the card as a JSON block, for tools, with the funnel beside the paper's as `paper_funnel`."""
    lines = ["# RealSyn export", "",
             f"Pipeline run `{data.get('run', '')}`, export config hash `{data.get('config_hash', '')}`.", "",
             f"Pairs in gold.realsyn: {data['gold_rows']}", "",
             "## Subsets", "",
             "Nested by construction: a pair is in the subset of cap t iff its seeded random rank "
             "inside its image cluster is below t.", ""]
    lines += _table(["cap t", "pairs", "release folder"],
                    [[c, n, f"`realsyn_cap{c}/`"] for c, n in sorted(data["subsets"].items(), key=lambda x: int(x[0]))])
    lines += ["", "## Funnel (per stage, latest run, from meta.stage_runs)", ""]
    lines += _table(["stage", "rows", "in", "kept", "rejected", "reasons"],
                    [[s["stage"], s["ledger"], s["in"], s["kept"], sum(s["rejected"].values()),
                      ", ".join(f"{r}={n}" for r, n in sorted(s["rejected"].items())) or "-"]
                     for s in data["stages"]])
    lines += ["", "## Funnel beside the paper's", "",
              "Rows left after each filter step of the paper, and the share of the rows reaching a "
              "step that it removes, for the paper and for this run (docs/export.md). A step whose filter "
              "did not run here (no spaCy pipeline, perplexity off) removes nothing."]
    lines += paper_funnel_lines(data["stages"])
    if data.get("truth"):
        lines += truth_lines(data["truth"])
    if data.get("coverage"):
        lines += coverage_lines(data["coverage"])
    if data.get("sentence_dedup"):
        lines += sentence_dedup_lines(data["sentence_dedup"])
    if data.get("sentence_filters"):
        lines += sentence_filter_lines(data["sentence_filters"])
    lines += ["", "## Tables", ""]
    lines += _table(["table", "rows", "kept"], [[t, v["rows"], v["kept"]] for t, v in data["tables"].items()])
    lines += ["", "## Figures", ""]
    lines += [f"![{title}]({name})" for title, name in figures.items()]
    lines += ["", "## Files", ""] + [f"- {f}" for f in data.get("files", [])]
    numbers = {**data, "paper_funnel": paper_comparison(data["stages"])}
    lines += ["", "```json", json.dumps(numbers, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)


def card_data(markdown: str) -> dict:
    """The JSON block at the end of a card."""
    found = CARD_JSON.findall(markdown)
    if not found:
        raise ValueError("dataset card has no JSON block")
    return json.loads(found[-1])

"""Extraction: the Spark stages against a plain single-process Python loop doing the same
work over the same inputs (fetch from a local HTTP server, decode, filter, dedup; split,
filter, entropy). Spark session start is excluded; both use the same 2 cores.

Prints `RESULT images_per_s=... sentences_per_s=... fetch_per_s=... spark_over_plain=...`.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import networkx as nx  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from realsyn.jobs.core.config import load_config  # noqa: E402
from realsyn.jobs.core.params import from_config  # noqa: E402
from realsyn.jobs.pipeline import run_stages  # noqa: E402
from realsyn.jobs.corpora.sample_corpus import draw_picture, encode, paragraph  # noqa: E402
from realsyn.udfs.fetch import FetchSettings, fetch_many  # noqa: E402
from realsyn.udfs.image_decode import DecodeLimits, decode, hamming  # noqa: E402
from realsyn.udfs.sentence_entropy import normalised_entropy  # noqa: E402
from realsyn.udfs.sentence_split import sentence_id, split  # noqa: E402

IMAGES: dict[str, bytes] = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = IMAGES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


def plain(docs, cfg, out_dir: str) -> tuple[float, float]:
    """The same extraction as a straightforward single-process loop, writing the same two
    tables (one row per URL and per distinct sentence, with status and reason) to Parquet,
    as the Spark side writes its Delta tables; (total s, fetch s)."""
    import hashlib
    t0 = time.perf_counter()
    urls = sorted({u for d in docs for u in d["images"] if u})
    fetched = fetch_many(urls, from_config(FetchSettings, cfg))
    t_fetch = time.perf_counter() - t0
    image_rows, kept = [], {}
    for u, f in zip(urls, fetched):
        d = decode(f.data, from_config(DecodeLimits, cfg)) if not f.reason else None
        reason = f.reason or d.reason
        if not reason and min(d.width, d.height) < cfg.get("images.min_side_px"):
            reason = "too_small"
        elif not reason and max(d.width, d.height) > cfg.get("images.max_aspect_ratio") * min(d.width, d.height):
            reason = "bad_aspect_ratio"
        elif not reason and d.image_id in kept:
            reason = "duplicate_exact"
        elif not reason:
            kept[d.image_id] = d
        image_rows.append({"url_id": hashlib.sha256(u.encode()).hexdigest(), "url": u,
                           "image_id": d.image_id if d else None, "bytes": None if reason else f.data,
                           "width": d.width if d else None, "height": d.height if d else None,
                           "phash": d.phash if d else None, "reason": reason})
    t = cfg.get("images.phash_max_hamming")
    ids = sorted(kept)
    buckets: dict = {}
    for i in ids:
        h = kept[i].phash & 0xFFFFFFFFFFFFFFFF
        for band in range(t + 1):
            buckets.setdefault((band, (h >> (band * 13)) & 0x1FFF), []).append(i)
    pairs = {(a, b) for group in buckets.values() for a in group for b in group
             if a < b and hamming(kept[a].phash, kept[b].phash) <= t}
    rep = {}
    for group in nx.connected_components(nx.Graph(pairs)):
        best = min(group, key=lambda i: (-kept[i].width * kept[i].height, i))
        rep.update(dict.fromkeys(group, best))
    for row in image_rows:
        if row["reason"] is None and rep.get(row["image_id"], row["image_id"]) != row["image_id"]:
            row["reason"], row["bytes"] = "duplicate_perceptual", None
        row["status"] = "rejected" if row["reason"] else "kept"
    pq.write_table(pa.Table.from_pylist(image_rows), f"{out_dir}/images.parquet")
    pool: dict[str, list] = {}
    for d in docs:
        for text in d["texts"]:
            for s in split(text) if text else []:
                pool.setdefault(sentence_id(s), [s, 0])[1] += 1
    url_re = re.compile(r"https?://|www\.", re.I)
    emoji_re = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\u2300-\u23FF]")
    sentence_rows = []
    for sid, (s, n) in pool.items():
        nw = len(s.split())
        ent = normalised_entropy(s)
        reason = ("emoji" if emoji_re.search(s) else "url" if url_re.search(s) else "too_few_words" if nw < 3
                  else "too_many_words" if nw > 81 else "low_entropy" if ent < 0.3 else None)
        sentence_rows.append({"sentence_id": sid, "text": s, "n_words": nw, "n_occurrences": n, "entropy": ent,
                              "status": "rejected" if reason else "kept", "reason": reason})
    pq.write_table(pa.Table.from_pylist(sentence_rows), f"{out_dir}/sentences.parquet")
    return time.perf_counter() - t0, t_fetch


def make_docs(rng, n: int, base: str, n_images: int) -> list[dict]:
    docs = []
    for d in range(n):
        texts = [paragraph(rng) for _ in range(3)]
        imgs = [f"{base}/img/{rng.randrange(n_images)}.jpg" for _ in range(2)]
        docs.append({"images": [None] * 3 + imgs, "texts": texts + [None, None],
                     "metadata": json.dumps([None] * 5), "general_metadata": json.dumps({"url": f"d{d}"})})
    return docs


def write_input(docs: list[dict], tmp: str, prefix: str):
    schema = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                        ("metadata", pa.string()), ("general_metadata", pa.string())])
    (Path(tmp) / f"{prefix}in").mkdir()
    pq.write_table(pa.Table.from_pylist(docs, schema=schema), f"{tmp}/{prefix}in/docs.parquet")
    return load_config("local", overrides=[
        f"run.work_dir={tmp}/{prefix}work", f"run.input={tmp}/{prefix}in", "spark.master=local[2]",
        "spark.progress_bar=false", "mlflow.enabled=false", "fetch.allow_loopback=true",
        "sentences.perplexity_filter=false"])


def main() -> None:
    import random
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--warmup-docs", type=int, default=40,
                    help="both sides first run once over this many other documents (0: cold)")
    args = ap.parse_args()
    rng = random.Random(3)
    for i in range(args.images):
        IMAGES[f"/img/{i}.jpg"] = encode(draw_picture(rng, rng.randint(90, 400), rng.randint(90, 400)), "JPEG")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    docs = make_docs(rng, args.docs, base, args.images)
    warm_docs = make_docs(random.Random(4), args.warmup_docs, base, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_input(docs, tmp, "")
        run_stages(cfg, ["ingest"], say=lambda *_: None)          # session start and ingest excluded
        warm = None
        if warm_docs:
            # Python workers, their imports and the JVM's first runs of these queries happen
            # once per session; the plain loop's imports are done before its clock starts.
            warm_cfg = write_input(warm_docs, tmp, "warm-")
            warm = run_stages(warm_cfg, ["ingest", "extract_images", "extract_sentences"], say=lambda *_: None)
            t_warm_plain = plain(warm_docs, warm_cfg, f"{tmp}/warm-work")[0]
        t0 = time.perf_counter()
        out = run_stages(cfg, ["extract_images", "extract_sentences"], force=True, say=print)
        t_wall = time.perf_counter() - t0
        # The stages' own time (work, writes, ledger checks); run_stages also counts every
        # output table afterwards for its summary, which the plain loop has no counterpart of.
        t_spark = sum(o.seconds for o in out.outcomes)
        n_sent = out.outcomes[1].ledgers[0].rows_in
        t_plain, t_fetch = plain(docs, cfg, tmp)
        kept_plain = [pq.read_table(f"{tmp}/{t}.parquet", filters=[("status", "=", "kept")]).num_rows
                      for t in ("images", "sentences")]
    server.shutdown()
    print(f"kept images: spark {out.outcomes[0].ledgers[0].kept}, plain {kept_plain[0]}; kept sentences: "
          f"spark {out.outcomes[1].ledgers[0].kept}, plain {kept_plain[1]} (the plain URL and emoji "
          "patterns are simpler than the stage's)")
    if warm is not None:
        print(f"warm-up over {args.warmup_docs} docs: spark {sum(o.seconds for o in warm.outcomes[1:]):.1f}s "
              f"(extract stages), plain {t_warm_plain:.1f}s")
    print(f"spark {t_spark:.1f}s, {t_wall:.1f}s with run_stages bookkeeping (images {out.outcomes[0].seconds:.1f}s, sentences {out.outcomes[1].seconds:.1f}s), "
          f"plain {t_plain:.1f}s, {n_sent} sentence occurrences, {args.images} images")
    print(f"RESULT images_per_s={args.images / out.outcomes[0].seconds:.1f} "
          f"sentences_per_s={n_sent / out.outcomes[1].seconds:.1f} fetch_per_s={args.images / t_fetch:.1f} "
          f"spark_over_plain={t_spark / t_plain:.2f}")


if __name__ == "__main__":
    main()

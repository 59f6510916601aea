# Databricks notebook source
# MAGIC %md
# MAGIC # realsyn: explore a finished run
# MAGIC The funnel per stage, cluster sizes before and after balancing, retrieval examples and a
# MAGIC grid of sample images with their texts. Point `REALSYN_WORK` at a run's work folder
# MAGIC (locally: `REALSYN_WORK=work .venv/bin/python notebooks/explore.py`); on Databricks the
# MAGIC `databricks` profile reads the catalog tables instead.

# COMMAND ----------
import io
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image
from pyspark.sql import Window
from pyspark.sql import functions as F

from realsyn.jobs.core.config import load_config
from realsyn.jobs.lib.image_bytes import kept_image_bytes
from realsyn.jobs.core.session import get_spark
from realsyn.jobs.core.tables import TableStore

PROFILE = "databricks" if "DATABRICKS_RUNTIME_VERSION" in os.environ else "local"
WORK = os.environ.get("REALSYN_WORK", "work")
OUT = os.path.join(WORK, "notebook")
os.makedirs(OUT, exist_ok=True)
cfg = load_config(PROFILE, overrides=[f"run.work_dir={WORK}"])
tables = TableStore(get_spark(cfg), cfg)

# COMMAND ----------
# MAGIC %md ## Funnel: rows in, kept and rejected per stage (latest run of each stage)

# COMMAND ----------
latest = Window.partitionBy("stage").orderBy(F.col("finished_at").desc())
runs = (tables.read("meta.stage_runs").withColumn("n", F.row_number().over(latest))
        .where("n = 1").orderBy("finished_at").collect())
funnel = []
for run in runs:
    for name, ledger in json.loads(run["ledger"]).items():
        funnel.append((run["stage"], name, ledger["in"], ledger["kept"], ledger["rejected"]))
        top = ", ".join(f"{k}={v}" for k, v in sorted(ledger["rejected"].items(), key=lambda kv: -kv[1])[:4])
        print(f"{run['stage']:<18} {name:<20} in={ledger['in']:<7} kept={ledger['kept']:<7} {top}")

# COMMAND ----------
# MAGIC %md ## Image clusters: sizes before and after the caps

# COMMAND ----------
clusters = tables.read("gold.image_clusters").where("cluster_id IS NOT NULL")
before = [r["count"] for r in clusters.groupBy("cluster_id").count().collect()]
caps = sorted(cfg.get("balance.caps"))
after = {t: [r["count"] for r in clusters.where(F.col("min_cap") <= t).groupBy("cluster_id").count().collect()]
         for t in caps}
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = max(5, min(40, len(before)))
ax.hist(before, bins=bins, alpha=0.6, label="before balancing")
ax.hist(after[caps[-1]], bins=bins, alpha=0.6, label=f"cap {caps[-1]}")
ax.set_xlabel("images per cluster")
ax.set_ylabel("clusters")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "cluster_sizes.png"), dpi=80)
print(f"clusters: {len(before)}, largest {max(before, default=0)}; "
      + ", ".join(f"cap {t}: largest {max(after[t], default=0)}" for t in caps))

# COMMAND ----------
# MAGIC %md ## Retrieval examples: each image's top-k realistic texts

# COMMAND ----------
retrievals = tables.read("gold.retrievals").where("rank > 0")
sentences = tables.read("silver.sentences").select("sentence_id", "text")
examples = (retrievals.join(sentences, "sentence_id")
            .join(retrievals.select("image_id").distinct().orderBy("image_id").limit(3), "image_id")
            .orderBy("image_id", "rank").collect())
for r in examples:
    print(f"{r['image_id'][:10]}  #{r['rank']}  {r['score']:+.3f}  {r['text'][:90]}")

# COMMAND ----------
# MAGIC %md ## Sample grid: images with text1 and the synthetic text

# COMMAND ----------
# A kept image's bytes live once, in silver.image_fetches: joined to the kept rows by url_id.
pairs = (tables.read("gold.realsyn").join(kept_image_bytes(tables.read), "image_id")
         .orderBy("image_id").limit(6).collect())
fig, axes = plt.subplots(2, 3, figsize=(9, 6.5))
for ax in axes.flat:
    ax.axis("off")
for ax, r in zip(axes.flat, pairs):
    ax.imshow(Image.open(io.BytesIO(r["bytes"])).convert("RGB"))
    ax.set_title(f"{(r['text1'] or '')[:38]}\nsyn: {(r['syn_text'] or '')[:38]}", fontsize=7)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "sample_grid.png"), dpi=80)
print(f"grid of {len(pairs)} pairs -> {OUT}/sample_grid.png")

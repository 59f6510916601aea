# Databricks notebook source
# MAGIC %md
# MAGIC # realsyn quick start
# MAGIC Runs the pipeline on the bundled sample and shows what it wrote. On Databricks, install
# MAGIC the realsyn wheel on the cluster and use the `databricks` profile; locally this file
# MAGIC also runs as a plain script (`.venv/bin/python notebooks/quickstart.py`).

# COMMAND ----------
import os

import realsyn.conf
from realsyn.jobs.core.config import load_config
from realsyn.jobs.pipeline import run_stages, summary
from realsyn.jobs.corpora.sample_corpus import write_sample

PROFILE = "databricks" if "DATABRICKS_RUNTIME_VERSION" in os.environ else "local"
WORK = os.environ.get("REALSYN_WORK", "work/notebook")
DOCS = int(os.environ.get("REALSYN_SAMPLE_DOCS", "100"))
# The sample's settings: file:// URLs under the sample folder, a wide similarity window.
SAMPLE_CONF = os.path.join(os.path.dirname(realsyn.conf.__file__), "sample.yaml")

# COMMAND ----------
sample = write_sample(f"{WORK}/sample", n_docs=DOCS)
cfg = load_config(PROFILE, [SAMPLE_CONF], [
    f"run.work_dir={WORK}", f"run.input={sample['out']}/obelics/*.parquet", f"fetch.file_root={sample['out']}"])
result = run_stages(cfg)
print(summary(result))

# COMMAND ----------
from realsyn.jobs.core.session import get_spark
from realsyn.jobs.core.tables import TableStore

tables = TableStore(get_spark(cfg), cfg)
tables.read("bronze.document_rejects").groupBy("reason").count().orderBy("reason").show()

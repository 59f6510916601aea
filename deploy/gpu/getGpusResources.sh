#!/usr/bin/env bash
# Spark resource discovery for GPUs: prints {"name":"gpu","addresses":["0","1",...]}.
# Spark runs it at executor (and worker) start (spark.{executor,worker}.resource.gpu.discoveryScript)
# and gives each task addresses from the list; the RAPIDS plugin and our model UDFs use an
# address as the CUDA device number, so the addresses are CUDA ordinals as this process sees them:
# - no CUDA_VISIBLE_DEVICES: every GPU nvidia-smi lists, by its index (the same numbering
#   as CUDA when the GPUs are alike or CUDA_DEVICE_ORDER=PCI_BUS_ID);
# - CUDA_VISIBLE_DEVICES set (a scheduler gave us some GPUs): CUDA renumbers the visible
#   ones 0..n-1, so we list 0..n-1, n = how many entries name a GPU that exists (CUDA
#   stops at the first entry that does not; empty or NoDevFiles means none).
set -euo pipefail

die() { echo "getGpusResources.sh: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null 2>&1 || die "nvidia-smi not found; install the NVIDIA driver on this node"
gpus=$(nvidia-smi --query-gpu=index,uuid --format=csv,noheader,nounits) \
  || die "nvidia-smi failed; is the NVIDIA driver loaded?"

indices=()
uuids=()
while IFS=',' read -r index uuid; do
  index="${index//[[:space:]]/}"
  uuid="${uuid//[[:space:]]/}"
  [[ -z "$index" ]] && continue
  [[ "$index" =~ ^[0-9]+$ ]] || die "unexpected GPU index '$index' from nvidia-smi"
  indices+=("$index")
  uuids+=("$uuid")
done <<< "$gpus"

addresses=()
if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
  IFS=',' read -ra wanted <<< "${CUDA_VISIBLE_DEVICES}"
  n=0
  for w in "${wanted[@]}"; do
    w="${w//[[:space:]]/}"
    found=0
    for k in "${!indices[@]}"; do
      # An index, or a UUID (CUDA also accepts a unique UUID prefix).
      if [[ "$w" == "${indices[$k]}" || ( "$w" == GPU-* && "${uuids[$k]}" == "$w"* ) ]]; then found=1; break; fi
    done
    (( found )) || break
    addresses+=("$n")
    n=$((n + 1))
  done
else
  addresses=("${indices[@]}")
fi

json=""
for a in "${addresses[@]}"; do json+="${json:+,}\"$a\""; done
echo "{\"name\":\"gpu\",\"addresses\":[${json}]}"

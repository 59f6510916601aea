"""benchmarks/gpu_check.py checks itself on the CPU (the GPU run is by hand: docs/gpu.md)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_the_cpu_and_agrees_with_itself():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    values = dict(kv.split("=", 1) for kv in line.split()[1:])
    assert values["device"] == "cpu"
    assert float(values["embed_min_cosine_fp16"]) > 0.999 and float(values["embed_min_cosine_bf16"]) > 0.999
    assert values["same_captions"] == "1.000" and values["same_fusions"] == "1.000"
    assert float(values["centroid_top1_agreement"]) == 1.0
    assert 0 < float(values["embed_cpu_prep_share"]) < 1 and 0 < float(values["gen_cpu_prep_share"]) < 1
    assert float(values["gen_tokens_per_s"]) > 0

"""`realsyn check-models --preset base --random-init`: the base preset's real classes through the
stages' executor code, offline (make test-slow: it builds about 1B parameters)."""
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_check_models_runs_the_base_preset_through_the_stages(tmp_path):
    done = subprocess.run([sys.executable, "-m", "realsyn", "check-models", "--preset", "base", "--random-init",
                           "--work-dir", str(tmp_path)], capture_output=True, text=True, timeout=1200)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "FAIL" not in out
    for expected in ("clip ViT-B-32", "llm chat template: renders one user turn as the real template does",
                     "embed images", "8 in, 7 kept, rejected {'undecodable': 1}", "embed sentences",
                     "50 in, 50 kept", "qwen2@local:llm on engine transformers", "blip@local:captioner",
                     "fusion prompt: the LLM's own chat template", "49 scored", "1 undefined"):
        assert expected in out, expected

"""benchmarks/gpu_smoke.sh on a machine without a GPU (CI's): the one command runs from the checkout, keeps its log
under $OUT, and its first stage fails with the versions it found and what is missing instead of a traceback later.
The GPU stages themselves run only where a GPU is lent (the closing notes of issue 25 say when they ran)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_smoke_check_stops_at_its_imports_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run the smoke check itself")
    out = tmp_path / "smoke"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", "benchmarks/gpu_smoke.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    log = (out / "smoke.log").read_text()
    assert f"gpu_smoke: imports: FAIL - torch {torch.__version__}" in log
    assert "CUDA devices 0 (none)" in log and "attention sdpa" in log
    assert "verl 0.9" in log and "transfer_queue" in log
    assert "gpu_smoke: ray" not in log  # nothing else runs without the imports
    assert log.rstrip().endswith(f"gpu_smoke: FAIL: imports (files under {out})")

"""The PBT baseline (benchmarks/pbt.py): Ray Tune's PopulationBasedTraining over the trainer's own phases, on a real
local Ray started by the benchmark, with the simulator as the trainer (the same code path as TRL phases)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_pbt_runs_a_population_on_the_trainers_phases_and_exploits(tmp_path):
    out = tmp_path / "pbt"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pbt.py"), "trainer=synthetic",
                           "trainer.step_delay_s=0.01", "--population", "2", "--steps", "32", "--interval", "16",
                           "--cpus", "2", "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "HOME": str(tmp_path)})  # Ray's ray.init() writes ~/.ray/auth_token
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "pbt.json").read_text())
    assert summary["errors"] == 0 and summary["steps_used"] == 64
    assert 0 < summary["best_val"] <= 1 and 0 < summary["test"] <= 1
    chunks = sorted(out.glob("ray/pbt/*/chunk_*/chunk.json"))
    assert len(chunks) == 4  # 2 members x 2 chunks of 16 steps, each one phase of the trainer
    second = [json.loads(c.read_text()) for c in chunks if json.loads(c.read_text())["step"] == 16]
    assert len(second) == 2  # each member's second chunk resumed at step 16 (its own checkpoint or a copied one)
    # PBT's own record of exploitation (pbt_global.txt: [target, source, ...] per copy) shows a member cloned
    policy = out / "ray" / "pbt" / "pbt_global.txt"
    assert policy.is_file() and policy.read_text().strip()

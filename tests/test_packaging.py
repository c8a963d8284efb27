"""An installed (non-editable) llmzero finds its conf/, prompts/ and recipes/ from any directory."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_config_and_runs_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("llmzero-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("llmzero/_data/conf/config.yaml", "llmzero/_data/conf/search/default.yaml",
                     "llmzero/_data/conf/trainer/synthetic.yaml", "llmzero/__main__.py",
                     "llmzero/models/shipped/tiny-arithmetic/model.safetensors",
                     "llmzero/models/shipped/tiny-arithmetic/build.json"):
        assert required in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    probe = subprocess.run([sys.executable, "-c", "import llmzero.paths as p; print(p.conf_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == str(site / "llmzero" / "_data" / "conf")
    r = subprocess.run([sys.executable, "-m", "llmzero", "trainer=synthetic", "trainer.step_delay_s=0", "search.budget=2"],
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (elsewhere / "runs" / "arithmetic-tiny-synthetic-heuristic-seed0" / "recipe.yaml").exists()

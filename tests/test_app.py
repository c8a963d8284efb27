"""The Hydra app end to end: composition, bad input, a full synthetic search, lock, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from outputs_check import check_search_outputs
import yaml
from hydra import compose, initialize_config_dir

from llmzero.models import embedded
from llmzero.config.hydra_store import register_configs
from llmzero.state.lock import SearchLock
from llmzero.paths import conf_dir

REPO = Path(__file__).resolve().parents[1]


def llmzero(*args, cwd, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "llmzero", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kw)


def compose_cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def test_config_groups_compose_with_typed_defaults():
    cfg = compose_cfg("trainer=synthetic", "search.budget=16")
    assert cfg.search.budget == 16
    assert cfg.search.uct.c == 1.414 and cfg.search.uct.temperature == 0.3
    assert cfg.search.limits.max_evolve_children == 2 and cfg.search.rho_min == 0.2
    assert cfg.trainer._target_ == "llmzero.trainers.synthetic.SyntheticTrainer"
    assert cfg.agent._target_ == "llmzero.agents.heuristic.HeuristicAgent"
    assert cfg.search.space.lora_rank.fixed_along_path is True
    for group in ("task", "model", "trainer", "search", "agent", "cluster"):
        assert cfg[group] is not None
    assert compose_cfg("model=qwen3_4b").model.path == "Qwen/Qwen3-4B"


def test_wrong_type_is_rejected_with_full_key():
    with pytest.raises(Exception, match=r"search\.budget"):
        compose_cfg("search.budget=many")


def test_unknown_group_option_lists_the_allowed_ones(tmp_path):
    r = llmzero("task=nosuchtask", f"search.dir={tmp_path / 'x'}", cwd=tmp_path)
    assert r.returncode == 2
    presets = sorted(p.stem for p in (conf_dir() / "task").glob("*.yaml"))
    assert presets[0] == "arithmetic" and f"task=nosuchtask is not valid: expected one of {presets}" in r.stderr


def test_out_of_range_hparam_is_one_clear_error(tmp_path):
    r = llmzero("trainer=synthetic", "hparams.temperature=5", f"search.dir={tmp_path / 'x'}", cwd=tmp_path)
    assert r.returncode == 2
    assert "hparams.temperature=5" in r.stderr and "expected a float in [0.1, 2]" in r.stderr
    assert "Traceback" not in r.stderr
    r = llmzero("trainer=synthetic", "+hparams.warmup=3", f"search.dir={tmp_path / 'y'}", cwd=tmp_path)
    assert r.returncode == 2 and "unknown hyperparameter(s) ['warmup']" in r.stderr


def _read_tree(d: Path):
    return json.loads((d / "tree.json").read_text())


def test_full_synthetic_search_writes_a_resumable_directory(tmp_path):
    out = tmp_path / "run"
    fast = ("trainer=synthetic", "trainer.step_delay_s=0", "wandb.mode=disabled")  # W&B runs: test_search_outputs.py
    r = llmzero(*fast, "search.budget=5", f"search.dir={out}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "best path: #0" in r.stdout
    tree = _read_tree(out)
    assert tree["iteration"] == 5 and len(tree["nodes"]) == 5
    statuses = {n["status"] for n in tree["nodes"]}
    assert statuses <= {"completed", "early_stopped", "failed"}
    for n in tree["nodes"]:
        nd = out / "nodes" / str(n["id"])
        for name in ("spec.yaml", "metrics.jsonl", "proposal.json", "log.txt"):
            assert (nd / name).exists(), (n["id"], name)
        spec = yaml.safe_load((nd / "spec.yaml").read_text())
        assert spec["node_id"] == n["id"] and spec["hparams"] == n["hparams"]
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    best = max((n for n in tree["nodes"] if n["best_val"] is not None), key=lambda n: n["best_val"])
    assert recipe["result"]["node"] == best["id"] and recipe["result"]["val"] == best["best_val"]
    assert recipe["phases"][0]["resume_step"] is None
    assert all(p["hparams"]["lora_rank"] == recipe["phases"][0]["hparams"]["lora_rank"] for p in recipe["phases"])
    # rerunning the finished search is a no-op that reports the same best path
    r2 = llmzero(*fast, "search.budget=5", f"search.dir={out}", cwd=tmp_path)
    assert r2.returncode == 0 and len(_read_tree(out)["nodes"]) == 5
    # a bigger budget through search.resume continues from where it stopped
    r3 = llmzero(f"search.resume={out}", "search.budget=6", cwd=tmp_path)
    assert r3.returncode == 0, r3.stderr
    assert _read_tree(out)["iteration"] == 6


def test_directory_holding_another_search_is_refused(tmp_path):
    out = tmp_path / "run"
    assert llmzero("trainer=synthetic", "search.budget=2", f"search.dir={out}", cwd=tmp_path).returncode == 0
    r = llmzero("trainer=synthetic", "search.budget=2", "hparams.learning_rate=3e-5", f"search.dir={out}", cwd=tmp_path)
    assert r.returncode == 2 and "holds a different search: hparams.learning_rate (None there, 3e-05 now)" in r.stderr


def test_second_search_on_same_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    # another process holds the directory's lock (a real OS lock, as a running search does)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys, time; from llmzero.state.lock import SearchLock; "
                                f"lock = SearchLock({str(out)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sleeper.stdout.readline().strip() == "held"
        r = llmzero("trainer=synthetic", f"search.dir={out}", cwd=tmp_path)
        assert r.returncode == 2
        assert f"is in use by process {sleeper.pid}" in r.stderr
    finally:
        sleeper.kill()  # kill -9: the holder cannot clean up
        sleeper.wait()
    # the owner is gone: the kernel released its lock, and the next search takes it
    r = llmzero("trainer=synthetic", "search.budget=1", f"search.dir={out}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_kill_9_then_rerun_continues_the_search(tmp_path):
    out = tmp_path / "run"
    args = ["trainer=synthetic", "trainer.step_delay_s=0.02", "search.budget=6", f"search.dir={out}"]
    proc = subprocess.Popen([sys.executable, "-m", "llmzero", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    killed_state = None
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            tree = _read_tree(out)
        except (OSError, json.JSONDecodeError):
            continue
        running = [n for n in tree["nodes"] if n["status"] == "running"]
        done = [n for n in tree["nodes"] if n["status"] in ("completed", "early_stopped", "failed")]
        if len(done) >= 2 and running:
            metrics = out / "nodes" / str(running[0]["id"]) / "metrics.jsonl"
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_state = _read_tree(out)
                break
    assert killed_state is not None, "search never reached the kill point"
    assert (out / "search.owner.json").exists()  # the dead process could not clean up
    was_running = [n for n in killed_state["nodes"] if n["status"] == "running"][0]
    finished_before = {n["id"]: n for n in killed_state["nodes"] if n["status"] in ("completed", "early_stopped", "failed")}

    r = llmzero(*args, cwd=tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "resuming search" in r.stdout
    after = _read_tree(out)
    by_id = {n["id"]: n for n in after["nodes"]}
    assert after["iteration"] == 6 and len(after["nodes"]) == 6
    for nid, n in finished_before.items():  # finished phases are kept as they were
        assert by_id[nid]["best_val"] == n["best_val"] and by_id[nid]["attempts"] == 1
    again = by_id[was_running["id"]]
    assert again["attempts"] == 2 and again["status"] in ("completed", "early_stopped", "failed")
    steps = [json.loads(l)["step"] for l in (out / "nodes" / str(again["id"]) / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "the resumed phase must not repeat steps"
    assert not (out / "search.owner.json").exists()  # released on a clean exit
    with SearchLock(out):  # and the lock is free
        pass


@pytest.mark.slow
def test_default_trl_search_end_to_end(tmp_path, default_tiny_cache):
    """The embedded default (TRL on the tiny model, heuristic agent), shortened: real GRPO phases,
    a child resuming its parent's adapter, test-split evaluation of the best node and of the base model.
    (The model is the one shipped in the package: test_embedded_model.py.)"""
    out = tmp_path / "run"
    env = {**os.environ, "LLMZERO_CACHE": str(default_tiny_cache["cache"])}
    r = llmzero("search.budget=2", "hparams.max_steps=6", "search.max_steps_per_phase=6", "hparams.batch_size=8",
                "search.display=false", f"search.dir={out}", cwd=tmp_path, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    tree = _read_tree(out)
    assert [n["kind"] for n in tree["nodes"]] == ["root", "evolve"]
    assert all(n["status"] in ("completed", "early_stopped") for n in tree["nodes"])
    child = tree["nodes"][1]
    assert child["resume_from"] == 0 and child["resume_step"] in tree["nodes"][0]["checkpoints"]
    spec = yaml.safe_load((out / "nodes/1/spec.yaml").read_text())
    assert spec["init_checkpoint"].endswith(f"nodes/0/checkpoints/step_{child['resume_step']}")
    metrics = [json.loads(l) for l in (out / "nodes/0/metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 6 and all("reward/mean" in m and "kl" in m for m in metrics)
    assert any("val/score" in m and "val/add_2digit" in m for m in metrics)
    meta = tree["meta"]
    # the shipped model's recorded scores, through the search's own evaluation processes (within the prompts that
    # decode on a near tie: test_embedded_model.py)
    shipped = embedded.shipped_info()
    for split in ("val", "test"):
        tolerance = shipped["fragile_prompts"][split] / 256 + 1e-9
        assert meta["base_model"][split] == pytest.approx(shipped["scores"][split]["score"], abs=tolerance)
    best = max(tree["nodes"], key=lambda n: (n["best_val"], -n["id"]))
    assert best["test_score"] is not None
    assert "base model: val" in r.stdout and "best path:" in r.stdout
    check_search_outputs(out)  # plots, W&B offline runs and the report, from real GRPO phases

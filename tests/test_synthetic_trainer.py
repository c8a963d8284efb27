"""The synthetic (simulator) backend: interface contract, files on disk, and the dynamics the search relies on."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from llmzero.hparams.space import HParamSpec
from llmzero.metrics import names as N
from llmzero.metrics.store import MetricSeries, read_records
from llmzero.trainers.base import PhaseHandle, PhaseSpec, TrainerBackend, checkpoint_dir, list_checkpoints
from llmzero.trainers.synthetic import SyntheticTrainer

TASK = {"name": "arithmetic", "train_size": 512, "val_size": 64, "test_size": 64,
        "subtasks": ["add_2digit", "add_3digit", "mul_1x2digit"]}
MODEL = {"name": "tiny", "params_b": 0.0003}
# conf/search/default.yaml defaults with the arithmetic task's and tiny model's overrides (θ0).
ROOT = {"learning_rate": 1e-5, "kl_coef": 0.001, "temperature": 1.0, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2,
        "grad_clip": 1.0, "entropy_coef": 0.0, "batch_size": 32, "rollouts": 4, "epochs": 1.0, "max_steps": 0,
        "response_length": 32, "norm_adv_by_std": True, "lora_rank": 8}
BETTER = {**ROOT, "learning_rate": 5e-5, "kl_coef": 0.005, "response_length": 64, "rollouts": 8}


def trainer() -> SyntheticTrainer:
    return SyntheticTrainer(name="synthetic", eval_every=5, save_every=5, extra_hparams={}, step_delay_s=0.0,
                            memory_budget=2.0e6, noise=0.01, seed=0, task=TASK, model=MODEL)


def spec(tmp: Path, node_id: int = 0, hparams: dict | None = None, **kw) -> PhaseSpec:
    kw = {"max_steps": 16, "eval_every": 5, "save_every": 5, **kw}
    return PhaseSpec(node_id=node_id, hparams=dict(hparams or ROOT), output_dir=str(tmp / f"node_{node_id}"), **kw)


def finish(handle, timeout: float = 10.0):
    deadline = time.time() + timeout
    while not handle.done():
        assert time.time() < deadline, "phase did not finish"
        time.sleep(0.005)
    return handle.result()


def run(tr: SyntheticTrainer, sp: PhaseSpec):
    result = finish(tr.start(sp))
    return result, MetricSeries.load(sp.dir / "metrics.jsonl")


@pytest.fixture(scope="module")
def root_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("root")
    sp = spec(tmp)
    result, series = run(trainer(), sp)
    return sp, result, series


def test_protocols_and_static_methods():
    tr = trainer()
    assert isinstance(tr, TrainerBackend)
    assert tr.name == "synthetic"
    assert tr.steps_per_epoch(ROOT) == 16  # ceil(512 / 32)
    assert tr.steps_per_epoch({**ROOT, "batch_size": 48}) == 11
    assert tr.check(ROOT) == []
    problems = tr.check({**ROOT, "batch_size": 1, "rollouts": 1})
    assert any("batch_size=1" in p and "rollouts=1" in p and ">= 2" in p for p in problems)
    # OOM is a runtime failure, not a check.
    assert tr.check({**ROOT, "batch_size": 4096, "rollouts": 64, "response_length": 4096}) == []
    assert tr.extra_hparams() == {}
    extra = SyntheticTrainer(task=TASK, model=MODEL, extra_hparams={
        "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.5, "default": 0.0},
        "loss_type": {"type": "str", "choices": ["grpo", "dr_grpo"], "default": "grpo"}}).extra_hparams()
    assert extra["warmup_ratio"] == HParamSpec(type="float", low=0.0, high=0.5, default=0.0)
    assert extra["loss_type"].choices == ("grpo", "dr_grpo")


def test_hydra_instantiation_with_dictconfig():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"_target_": "llmzero.trainers.synthetic.SyntheticTrainer", "name": "synthetic",
                            "eval_every": 5, "save_every": 5, "extra_hparams": {}, "step_delay_s": 0.0,
                            "memory_budget": 2.0e6, "noise": 0.01, "seed": 0})
    tr = instantiate(cfg, task=OmegaConf.create(TASK), model=OmegaConf.create(MODEL))
    assert tr.subtasks == TASK["subtasks"] and tr.steps_per_epoch(ROOT) == 16


def test_default_root_run_files_and_metrics(root_run):
    sp, result, series = root_run
    recs = series.records
    assert [r[N.STEP] for r in recs] == list(range(1, 17))
    assert all(r[N.GLOBAL_STEP] == r[N.STEP] for r in recs)
    for r in recs:
        missing = {N.STEP, N.GLOBAL_STEP, *N.TRAIN_METRICS} - set(r)
        assert not missing, missing
    eval_steps = [s for s, _ in series.series(N.VAL_SCORE)]
    assert eval_steps == [5, 10, 15, 16]
    assert [s for s, _ in series.series(N.TEST_SCORE)] == eval_steps
    for t in TASK["subtasks"]:
        assert [s for s, _ in series.series(f"val/{t}")] == eval_steps
    # Mediocre root: learns a little, limited by truncation at response_length 32 < 48 needed.
    vals = series.values(N.VAL_SCORE)
    assert 0.33 <= vals[-1] <= 0.45 and vals[-1] > vals[0]
    assert all(0.6 < v < 0.8 for v in series.values(N.RESPONSE_CLIP_RATIO))
    assert all(28 < v <= 32.5 for v in series.values(N.RESPONSE_LENGTH))
    assert all(v == 1e-5 for v in series.values(N.LR))
    assert all(0.9 < v <= 1.02 for v in series.values(N.ENTROPY))

    assert result.status == "completed" and result.steps_done == 16 and result.error is None
    assert result.best_val == max(vals)
    assert result.best_step == eval_steps[vals.index(max(vals))]
    assert set(result.val_subscores) == set(TASK["subtasks"])
    assert result.test_score == series.at_step(N.TEST_SCORE, result.best_step)
    assert result.checkpoints == [5, 10, 15, 16] == list_checkpoints(sp.dir)
    for k in result.checkpoints:
        assert (checkpoint_dir(sp.dir, k) / "state.json").exists()
        assert (checkpoint_dir(sp.dir, k) / "COMPLETE").exists()
    log = (sp.dir / "log.txt").read_text()
    assert "step 16/16" in log and "eval step 10" in log and "completed 16 steps" in log
    assert "step 16/16" in result.log_tail and result.gpu_s == 0.0


def test_poll_returns_each_record_once(tmp_path):
    handle = trainer().start(spec(tmp_path))
    assert isinstance(handle, PhaseHandle)
    got = []
    deadline = time.time() + 10
    while not handle.done():
        got += handle.poll()
        assert time.time() < deadline
    got += handle.poll()
    assert [r[N.STEP] for r in got] == list(range(1, 17))
    assert handle.poll() == []


def test_deterministic(tmp_path, root_run):
    _, _, series = root_run
    _, again = run(trainer(), spec(tmp_path))
    assert again.records == series.records
    _, other = run(trainer(), spec(tmp_path, node_id=7))
    assert other.values(N.VAL_SCORE) != series.values(N.VAL_SCORE)


def test_child_starts_from_parent_checkpoint(tmp_path, root_run):
    parent_sp, _, parent = root_run
    sp = spec(tmp_path, node_id=1, max_steps=4, eval_every=1, global_offset=10,
              init_checkpoint=str(checkpoint_dir(parent_sp.dir, 10)))
    result, child = run(trainer(), sp)
    assert result.status == "completed"
    assert child.values(N.GLOBAL_STEP) == [11, 12, 13, 14]
    first = child.values(N.VAL_SCORE)[0]
    assert abs(first - parent.at_step(N.VAL_SCORE, 10)) < 0.05
    assert first > 0.3  # well above the base model's 0.25: it kept the parent's skill


def test_better_hparams_beat_defaults(tmp_path, root_run):
    root_sp, _, root = root_run
    tr = trainer()
    _, scratch = run(tr, spec(tmp_path, node_id=2, hparams=BETTER))
    assert scratch.values(N.VAL_SCORE)[-1] > root.values(N.VAL_SCORE)[-1] + 0.2
    # Two evolve phases from the mediocre root clear 0.6.
    mid = {**ROOT, "learning_rate": 3e-5, "kl_coef": 0.003, "response_length": 48}
    sp3 = spec(tmp_path, node_id=3, hparams=mid, global_offset=16, init_checkpoint=str(checkpoint_dir(root_sp.dir, 16)))
    r3, s3 = run(tr, sp3)
    sp4 = spec(tmp_path, node_id=4, hparams=BETTER, global_offset=32, init_checkpoint=str(checkpoint_dir(sp3.dir, 16)))
    r4, s4 = run(tr, sp4)
    assert root.values(N.VAL_SCORE)[-1] < r3.best_val < r4.best_val and r4.best_val >= 0.6
    assert max(s4.values(N.RESPONSE_CLIP_RATIO)) < 0.01  # no truncation at 64 tokens


def test_low_lr_plateaus(tmp_path):
    _, s = run(trainer(), spec(tmp_path, hparams={**ROOT, "learning_rate": 1e-6}))
    assert max(s.values(N.GRAD_NORM)) < 0.01 and max(s.values(N.CLIP_RATIO)) < 0.002
    vals = s.values(N.VAL_SCORE)
    assert max(vals) - min(vals) < 0.06


def test_reckless_lr_blows_up_kl(tmp_path, root_run):
    _, _, root = root_run
    _, s = run(trainer(), spec(tmp_path, hparams={**ROOT, "learning_rate": 5e-4, "kl_coef": 0.0}))
    kl = s.values(N.KL)
    assert max(kl) > 1.0 and max(kl) > 50 * max(root.values(N.KL))
    assert kl[-1] > 10 * kl[1]  # it grows, it is not noise
    vals = s.values(N.VAL_SCORE)
    assert vals[-1] < 0.15 < root.values(N.VAL_SCORE)[-1] and vals[-1] < vals[0]


def test_low_temperature_collapses_entropy(tmp_path):
    hp = {**ROOT, "learning_rate": 5e-5, "temperature": 0.6, "kl_coef": 0.0}
    _, s = run(trainer(), spec(tmp_path, hparams=hp, max_steps=32))
    ent = s.values(N.ENTROPY)
    assert ent[0] > 0.8 and ent[-1] < 0.1
    assert s.values(N.ZERO_STD_FRAC)[-1] > 0.6


def test_oom_fails_at_step_one(tmp_path):
    sp = spec(tmp_path, hparams={**ROOT, "batch_size": 512, "rollouts": 64, "response_length": 128})
    result, s = run(trainer(), sp)
    assert result.status == "failed" and result.steps_done == 0 and s.records == []
    assert result.error.startswith("torch.OutOfMemoryError: CUDA out of memory (simulated) at step 1")
    assert "batch_size=512" in result.error and "needs 4.1943e+06 > budget 2e+06" in result.error
    assert "OutOfMemoryError" in result.log_tail and result.checkpoints == []


def test_nan_failure_keeps_earlier_checkpoints(tmp_path):
    sp = spec(tmp_path, hparams={**ROOT, "learning_rate": 5e-3}, save_every=1)
    result, s = run(trainer(), sp)
    assert result.status == "failed" and result.error.startswith("loss became NaN at step 3 (simulated)")
    assert result.steps_done == 2 and result.checkpoints == [1, 2] and len(s.records) == 2


def test_graceful_stop_saves_final_checkpoint(tmp_path):
    sp = spec(tmp_path, max_steps=500, save_every=100, eval_every=100)
    handle = SyntheticTrainer(task=TASK, model=MODEL, step_delay_s=0.01).start(sp)
    while len(read_records(sp.dir / "metrics.jsonl")) < 3:
        time.sleep(0.002)
    handle.stop("dominated by the best node")
    result = finish(handle)
    assert result.status == "early_stopped" and 3 <= result.steps_done < 100
    assert result.checkpoints == [result.steps_done]
    assert "dominated by the best node" in result.log_tail


def test_kill_fails_without_checkpoint(tmp_path):
    sp = spec(tmp_path, max_steps=500, save_every=100)
    handle = SyntheticTrainer(task=TASK, model=MODEL, step_delay_s=0.01).start(sp)
    while not read_records(sp.dir / "metrics.jsonl"):
        time.sleep(0.002)
    handle.kill()
    result = finish(handle)
    assert result.status == "failed" and result.error == "killed" and result.checkpoints == []


def test_resume_own_continues_numbering(tmp_path, root_run):
    root_sp, _, root = root_run
    crashed = tmp_path / "node_0"
    shutil.copytree(root_sp.dir, crashed)
    # A crash after step 16 was logged but before later checkpoints were durable.
    shutil.rmtree(checkpoint_dir(crashed, 15))
    shutil.rmtree(checkpoint_dir(crashed, 16))
    (checkpoint_dir(crashed, 10) / "COMPLETE").unlink()  # torn save: must not be resumed from
    sp = spec(tmp_path, resume_own=True)
    result, s = run(trainer(), sp)
    assert result.status == "completed" and result.steps_done == 16
    assert [r[N.STEP] for r in s.records] == list(range(1, 17))
    assert s.records == root.records  # resumed at step 5 and replayed 6..16 exactly
    assert result.checkpoints == [5, 10, 15, 16]
    assert "resuming own checkpoint step_5" in (crashed / "log.txt").read_text()


def test_evaluate_checkpoint_and_base(root_run):
    sp, _, series = root_run
    tr = trainer()
    scores = tr.evaluate(str(checkpoint_dir(sp.dir, 10)), "val")
    assert scores["score"] == pytest.approx(series.at_step(N.VAL_SCORE, 10))
    assert scores["add_2digit"] == pytest.approx(series.at_step("val/add_2digit", 10))
    test = tr.evaluate(checkpoint_dir(sp.dir, 10), "test")
    assert test["score"] == pytest.approx(series.at_step(N.TEST_SCORE, 10))
    base = tr.evaluate(None, "val")
    assert abs(base["score"] - 0.25) < 0.05 and set(base) == {"score", *TASK["subtasks"]}
    assert tr.evaluate(None, "train") is None


def test_thread_exception_ends_as_failed(tmp_path):
    sp = spec(tmp_path, init_checkpoint=str(tmp_path / "does_not_exist"))
    result, _ = run(trainer(), sp)
    assert result.status == "failed"
    assert "Traceback" in result.error and "FileNotFoundError" in result.error

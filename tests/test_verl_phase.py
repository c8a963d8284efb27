"""A trainer=verl phase end to end on the CPU, against the labelled FAKE verl driver (tests/fake_verl_driver.py):
our entry point, the checkpoint callback (run by verl's own build_checkpoint_callback), the model merger, the metrics
tail and result.json are all real; only verl's training loop is the fake's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="trainer=verl needs the verl extra: pip install 'llmzero[verl]'")

from hydra import compose, initialize_config_dir  # noqa: E402

from llmzero.app import build_space, root_hparams  # noqa: E402
from llmzero.config.hydra_store import register_configs  # noqa: E402
from llmzero.executors.phase_job import run_to_end  # noqa: E402
from llmzero.metrics import names  # noqa: E402
from llmzero.metrics.store import read_records  # noqa: E402
from llmzero.paths import conf_dir  # noqa: E402
from llmzero.state.phase_dir import list_checkpoints  # noqa: E402
from llmzero.trainers.base import EvalRequest, PhaseSpec  # noqa: E402
from llmzero.trainers.factory import trainer_from_config  # noqa: E402

TESTS = Path(__file__).parent
SMALL = {"batch_size": 8, "rollouts": 2, "response_length": 8, "lora_rank": 4}


@pytest.fixture
def verl_trainer(monkeypatch):
    """trainer=verl with the FAKE driver, on the builtin tiny model without its warm start (fast to build)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["trainer=verl", "trainer.driver=fake_verl_driver",
                                                       "cluster.gpus_per_phase=1", "+model.build.sft_steps=0"])
    trainer = trainer_from_config(cfg)
    trainer.prepare(print)
    theta0 = {**root_hparams(cfg, build_space(cfg, trainer)), **SMALL}
    assert trainer.check(theta0) == []
    return trainer, theta0


def phase(tmp: Path, node: int, hp: dict, steps: int, **kw) -> PhaseSpec:
    return PhaseSpec(node_id=node, hparams=hp, output_dir=str(tmp / str(node)), max_steps=steps, eval_every=2,
                     save_every=2, **kw)


def test_a_parent_and_a_child_phase_through_verls_seam(verl_trainer, tmp_path):
    trainer, hp = verl_trainer
    parent = run_to_end(trainer, phase(tmp_path, 0, hp, 4))
    assert (parent.status, parent.steps_done, parent.checkpoints) == ("completed", 4, [2, 4]), parent.error
    records = read_records(tmp_path / "0" / "metrics.jsonl")
    assert [r[names.STEP] for r in records] == [1, 2, 3, 4]
    assert all({names.REWARD_MEAN, names.KL, names.ENTROPY, names.CLIP_RATIO, names.GRAD_NORM, names.LR,
                names.RESPONSE_LENGTH, names.STEP_TIME} <= set(r) for r in records)
    assert [r[names.STEP] for r in records if names.VAL_SCORE in r] == [2, 4]
    assert {"val/add_2digit", "val/add_3digit", "val/mul_1x2digit"} <= set(records[1])
    assert json.loads((tmp_path / "0" / "result.json").read_text())["status"] == "completed"
    ckpt = tmp_path / "0" / "checkpoints" / "step_2"
    assert sorted(p.name for p in ckpt.iterdir()) == ["COMPLETE", "adapter_config.json", "adapter_model.safetensors",
                                                      "phase.json"]

    child_hp = {**hp, "learning_rate": hp["learning_rate"] / 2}
    child = run_to_end(trainer, phase(tmp_path, 1, child_hp, 2, init_checkpoint=str(ckpt), global_offset=2))
    assert (child.status, child.checkpoints) == ("completed", [2]), child.error
    first = read_records(tmp_path / "1" / "metrics.jsonl")[0]
    assert (first[names.STEP], first[names.GLOBAL_STEP]) == (1, 3)
    # the child started from the parent's step-2 adapter: the fake's KL (mean |B|) goes on from there
    assert first[names.KL] == pytest.approx(records[1][names.KL] + child_hp["learning_rate"] * 100, rel=1e-3)
    assert f"loaded LoRA adapter {ckpt}" in (tmp_path / "1" / "log.txt").read_text()
    meta = json.loads((tmp_path / "1" / "checkpoints" / "step_2" / "phase.json").read_text())
    assert (meta["node_id"], meta["global_step"], meta["init_checkpoint"]) == (1, 4, str(ckpt))

    base, trained = trainer.evaluate_batch([EvalRequest(None, "test", hp), EvalRequest(str(ckpt), "val", hp)])
    assert set(base) == set(trained) == {"score", "add_2digit", "add_3digit", "mul_1x2digit"}
    assert trained["score"] == pytest.approx(records[1][names.VAL_SCORE])  # as the phase scored that checkpoint


def test_stop_ends_the_phase_right_after_verls_next_save(verl_trainer, tmp_path, monkeypatch):
    trainer, hp = verl_trainer
    monkeypatch.setenv("FAKE_VERL_STEP_S", "1.5")
    handle = trainer.start(phase(tmp_path, 0, hp, 8))
    metrics = tmp_path / "0" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text()) and time.monotonic() < deadline:
        handle.poll()
        time.sleep(0.2)
    handle.stop("dominated")  # STOP + SIGTERM: verl ignores signals, the callback reads STOP at its next save
    while not handle.done():
        time.sleep(0.2)
    result = handle.result()
    assert (result.status, result.steps_done, result.checkpoints) == ("early_stopped", 2, [2]), result.error
    assert [r[names.STEP] for r in read_records(metrics)] == [1, 2]  # the stopping step's metrics are logged
    assert "stop requested (dominated): ending after step 2" in (tmp_path / "0" / "log.txt").read_text()


def test_a_diverged_verl_run_fails_the_phase_with_the_value_named(verl_trainer, tmp_path, monkeypatch):
    trainer, hp = verl_trainer
    monkeypatch.setenv("FAKE_VERL_GRAD_NORM", "nan")  # verl's file logger writes it as null
    monkeypatch.setenv("FAKE_VERL_STEP_S", "1")
    result = run_to_end(trainer, phase(tmp_path, 0, hp, 8))
    assert result.status == "failed" and "grad_norm=nan at step 1: training diverged" in result.error
    assert "ending verl: grad_norm=nan" in (tmp_path / "0" / "log.txt").read_text()  # not left to run on
    assert list_checkpoints(tmp_path / "0") != [2, 4, 6, 8]

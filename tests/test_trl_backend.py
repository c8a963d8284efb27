"""trainer=trl: the GRPOConfig mapping (pure), check(), and real TRL phases on a tiny Qwen3 (CPU, a few steps each)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from llmzero.metrics import names as N
from llmzero.metrics.store import read_records
from llmzero.trainers.base import PhaseSpec, checkpoint_dir, list_checkpoints
from llmzero.trainers.trl.backend import TRLTrainer
from llmzero.trainers.trl.config_map import grpo_kwargs, lora_kwargs, problems

TASK = {
    "_target_": "llmzero.tasks.arithmetic.ArithmeticTask", "name": "arithmetic", "train_size": 256,
    "val_size": 24, "test_size": 24, "subtasks": ["add_2digit", "add_3digit"], "seed": 0,
    "hparams": {"response_length": 8},
}
# builtin:tiny without its warm start (seconds to build; built once per session in a tmp cache). Its rewards and
# greedy scores are zero, so the tests below compare completions where scores alone would be trivially equal.
BUILD = {"sft_steps": 0}
MODEL = {"name": "tiny", "path": "builtin:tiny", "params_b": 0.0003, "build": BUILD}
# Large learning rate and an entropy bonus: the adapter moves visibly within 2 steps even when every group's
# rewards are equal (zero advantage).
HP = {
    "learning_rate": 1.0e-2, "kl_coef": 0.01, "temperature": 1.0, "clip_ratio_low": 0.2, "clip_ratio_high": 0.28,
    "grad_clip": 1.0, "entropy_coef": 0.01, "batch_size": 2, "rollouts": 4, "epochs": 1.0, "max_steps": 0,
    "response_length": 8, "norm_adv_by_std": True, "lora_rank": 4,
}


# ------------------------------------------------------------------------------------ pure mapping


def test_grpo_kwargs_maps_the_canonical_vocabulary():
    hp = {**HP, "batch_size": 3, "rollouts": 4, "norm_adv_by_std": False}
    kw = grpo_kwargs(hp, max_steps=7, output_dir="/tmp/x", seed=5, use_cpu=True)
    assert kw["learning_rate"] == 1.0e-2 and kw["lr_scheduler_type"] == "constant" and kw["warmup_steps"] == 0
    assert kw["beta"] == 0.01
    assert kw["temperature"] == 1.0
    assert kw["num_generations"] == 4
    assert kw["epsilon"] == 0.2 and kw["epsilon_high"] == 0.28
    assert kw["max_grad_norm"] == 1.0
    assert kw["entropy_coef"] == 0.01
    assert kw["max_completion_length"] == 8
    assert kw["scale_rewards"] == "none"
    assert kw["loss_type"] == "dapo"
    assert kw["max_steps"] == 7 and kw["seed"] == 5
    # one optimizer step = batch_size prompts × rollouts completions, in one micro-batch by default
    assert kw["per_device_train_batch_size"] == 12
    assert kw["gradient_accumulation_steps"] == 1 and kw["steps_per_generation"] == 1
    assert kw["num_iterations"] == 1
    assert kw["use_cpu"] is True and kw["bf16"] is False and kw["fp16"] is False
    assert kw["report_to"] == "none" and kw["save_strategy"] == "no" and kw["logging_steps"] == 1
    assert kw["remove_unused_columns"] is False and kw["use_vllm"] is False
    assert grpo_kwargs({**hp, "norm_adv_by_std": True}, max_steps=1, output_dir="x")["scale_rewards"] == "group"
    assert grpo_kwargs({**hp, "kl_coef": 0.0}, max_steps=1, output_dir="x")["beta"] == 0.0  # always passed


def test_micro_batches_split_one_generation_batch():
    kw = grpo_kwargs({**HP, "batch_size": 4, "rollouts": 4}, max_steps=3, output_dir="x", micro_batch_size=4)
    assert kw["per_device_train_batch_size"] == 4
    assert kw["gradient_accumulation_steps"] == 4 and kw["steps_per_generation"] == 4
    # micro_batch_size at or above the step collapses to a single micro-batch
    kw = grpo_kwargs({**HP, "batch_size": 2, "rollouts": 4}, max_steps=3, output_dir="x", micro_batch_size=64)
    assert kw["per_device_train_batch_size"] == 8 and kw["gradient_accumulation_steps"] == 1


def test_grpo_config_agrees_with_the_batch_semantics(tmp_path):
    """TRL 1.16's own post-init derivation: one generation batch of batch_size × rollouts per optimizer step."""
    from trl import GRPOConfig

    for bs, g, micro in ((3, 4, 0), (4, 4, 4), (2, 8, 8), (5, 2, 5)):
        args = GRPOConfig(**grpo_kwargs({**HP, "batch_size": bs, "rollouts": g}, max_steps=2,
                                        output_dir=str(tmp_path), micro_batch_size=micro))
        assert args.generation_batch_size == bs * g
        assert args.per_device_train_batch_size * args.gradient_accumulation_steps == bs * g
        assert args.steps_per_generation == args.gradient_accumulation_steps
        assert args.beta == HP["kl_coef"] and args.num_generations == g and args.epsilon_high == 0.28
        assert args.scale_rewards == "group" and args.entropy_coef == 0.01 and args.use_cpu


def test_mapping_rejects_indivisible_batches_with_a_clear_message():
    with pytest.raises(ValueError) as err:
        grpo_kwargs({**HP, "batch_size": 3, "rollouts": 4}, max_steps=2, output_dir="x", micro_batch_size=8)
    msg = str(err.value)
    assert "batch_size=3 × rollouts=4 = 12 completions" in msg and "micro_batch_size=8" in msg
    assert "[1, 2, 3, 4, 6, 12]" in msg
    with pytest.raises(ValueError, match="max_steps=0"):
        grpo_kwargs(HP, max_steps=0, output_dir="x")
    with pytest.raises(ValueError, match="would override GRPOConfig fields"):
        grpo_kwargs(HP, max_steps=1, output_dir="x", passthrough={"beta": 0.5})


def test_lora_kwargs():
    assert lora_kwargs(8) == {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "bias": "none",
                              "target_modules": "all-linear", "task_type": "CAUSAL_LM"}


def test_check_reports_backend_constraints():
    tr = TRLTrainer(task=TASK, model=MODEL, micro_batch_size=8)
    assert tr.check({**HP, "batch_size": 2, "rollouts": 4}) == []
    (msg,) = tr.check({**HP, "batch_size": 3, "rollouts": 4})
    assert "batch_size=3 × rollouts=4 = 12 completions per optimizer step is not divisible by" in msg
    assert "trainer.micro_batch_size=8" in msg
    (msg,) = tr.check({**HP, "rollouts": 1, "batch_size": 8})
    assert msg.startswith("rollouts=1 is not allowed") and ">= 2" in msg
    (msg,) = TRLTrainer(task=TASK, model=MODEL).check({**HP, "batch_size": 512})
    assert "batch_size=512 is larger than the training split (256 prompts)" in msg
    assert TRLTrainer(task=TASK, model=MODEL).check({**HP, "temperature": 0.0})[0].startswith("temperature=0.0")
    with pytest.raises(ValueError, match=r"trainer.loss_type='sapo' is not valid: expected one of \['dapo'"):
        TRLTrainer(task=TASK, model=MODEL, loss_type="sapo")
    with pytest.raises(ValueError, match="not GRPOConfig fields"):
        TRLTrainer(task=TASK, model=MODEL, extra_hparams={"no_such_knob": {"type": "float", "default": 1.0}})
    with pytest.raises(ValueError, match="canonical"):
        TRLTrainer(task=TASK, model=MODEL, extra_hparams={"beta": {"type": "float", "default": 1.0}})
    tr = TRLTrainer(task=TASK, model=MODEL, extra_hparams={"top_p": {"type": "float", "low": 0.1, "high": 1.0,
                                                                    "default": 1.0}})
    assert tr.extra_hparams()["top_p"].default == 1.0 and tr.options()["passthrough"] == ["top_p"]
    assert tr.steps_per_epoch({**HP, "batch_size": 10}) == math.ceil(256 / 10) == 26
    assert problems({**HP, "entropy_coef": 0.02}) == []  # TRL 1.16 has an entropy bonus: supported


def test_hydra_config_builds_the_backend():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from llmzero.config.hydra_store import register_configs
    from llmzero.paths import conf_dir

    register_configs()
    with initialize_config_dir(str(conf_dir()), version_base=None):
        cfg = compose("config", overrides=["trainer=trl"])
    tr = instantiate(cfg.trainer, task=OmegaConf.to_container(cfg.task, resolve=True),
                     model=OmegaConf.to_container(cfg.model, resolve=True), _convert_="all", _recursive_=False)
    assert isinstance(tr, TRLTrainer) and tr.name == "trl" and tr.opts.loss_type == "dapo" and tr.opts.torch_threads == 1
    assert tr.task["name"] == "arithmetic" and tr.model["path"] == "builtin:tiny"


# ------------------------------------------------------------------------------------ real phases


@pytest.fixture(scope="session")
def tiny_env(tmp_path_factory):
    """LLMZERO_CACHE in a tmp dir (inherited by the phase subprocesses) with the tiny model built once."""
    from llmzero.models.tiny import ensure_tiny_model
    from llmzero.tasks.base import build_task

    cache = tmp_path_factory.mktemp("llmzero-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMZERO_CACHE", str(cache))
        path = ensure_tiny_model(build_task(TASK), BUILD, progress=False)
        yield {"cache": cache, "path": path}


def _trainer(**kw):
    opts = {"eval_every": 2, "save_every": 2, "torch_threads": 2, **kw}
    return TRLTrainer(task=TASK, model=MODEL, **opts)


def _spec(out: Path, **kw) -> PhaseSpec:
    base = {"node_id": 0, "hparams": dict(HP), "output_dir": str(out), "max_steps": 4, "eval_every": 2,
            "save_every": 2, "seed": 0}
    return PhaseSpec(**{**base, **kw})


def _run(trainer, spec, timeout=240):
    handle = trainer.start(spec)
    handle.wait(timeout)
    return handle, handle.result()


@pytest.fixture(scope="session")
def parent_phase(tiny_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("trl-parent") / "node_0"
    spec = _spec(out, global_offset=10)
    t0 = time.monotonic()
    _, result = _run(_trainer(), spec)
    wall = time.monotonic() - t0
    return {"dir": out, "spec": spec, "result": result, "wall": wall, "records": read_records(out / "metrics.jsonl")}


def test_phase_writes_canonical_metrics_and_adapter_checkpoints(parent_phase):
    res, recs, out = parent_phase["result"], parent_phase["records"], parent_phase["dir"]
    assert res.status == "completed", (res.error, res.log_tail)
    assert res.steps_done == 4 and res.checkpoints == [2, 4]
    assert [r[N.STEP] for r in recs] == [1, 2, 3, 4]
    assert [r[N.GLOBAL_STEP] for r in recs] == [11, 12, 13, 14]
    train_keys = (N.REWARD_MEAN, N.REWARD_STD, N.KL, N.ENTROPY, N.CLIP_RATIO, N.GRAD_NORM, N.RESPONSE_LENGTH,
                  N.RESPONSE_CLIP_RATIO, N.ZERO_STD_FRAC, N.LR, N.STEP_TIME)
    for r in recs:
        for key in train_keys:
            assert isinstance(r.get(key), float) and math.isfinite(r[key]), (key, r)
        assert 0.0 <= r[N.REWARD_MEAN] <= 1.0 and 0.0 <= r[N.ZERO_STD_FRAC] <= 1.0
        assert 0.0 < r[N.RESPONSE_LENGTH] <= 8.0 and 0.0 <= r[N.RESPONSE_CLIP_RATIO] <= 1.0
        assert r[N.LR] == pytest.approx(1.0e-2) and r[N.ENTROPY] > 0 and r[N.STEP_TIME] > 0
        assert r[N.CLIP_RATIO] == 0.0  # one on-policy update per batch: the ratio is exactly 1
    assert recs[0][N.KL] == pytest.approx(0.0, abs=1e-6)  # the fresh adapter IS the base model (the reference)
    assert recs[-1][N.KL] > 0 and recs[-1][N.GRAD_NORM] > 0  # the policy moved away from it
    evald = [r for r in recs if N.VAL_SCORE in r]
    assert [r[N.STEP] for r in evald] == [2, 4]
    for r in evald:
        assert 0.0 <= r[N.VAL_SCORE] <= 1.0
        subs = [r["val/add_2digit"], r["val/add_3digit"]]
        assert r[N.VAL_SCORE] == pytest.approx(sum(subs) / 2)  # 12 examples of each subtask
    # adapter-only checkpoints (the base model weights are not in them)
    for step in (2, 4):
        ck = checkpoint_dir(out, step)
        assert (ck / "COMPLETE").exists() and (ck / "adapter_config.json").exists()
        size = (ck / "adapter_model.safetensors").stat().st_size
        assert 0 < size < 200_000
        assert not list(ck.glob("model*.safetensors"))
        val = json.loads((ck / "val.json").read_text())
        assert val["step"] == step and val["score"] == next(r for r in recs if r[N.STEP] == step)[N.VAL_SCORE]
        assert json.loads((ck / "phase.json").read_text())["hparams"]["lora_rank"] == 4
    assert json.loads((ck / "adapter_config.json").read_text())["r"] == 4
    assert res.best_step in (2, 4) and res.best_val is not None
    log = (out / "log.txt").read_text()
    assert "step 4/4 global=14" in log and "saved adapter checkpoints/step_4" in log


def test_kl_is_absent_when_kl_coef_is_zero(tiny_env, tmp_path):
    spec = _spec(tmp_path / "nokl", hparams={**HP, "kl_coef": 0.0}, max_steps=1, eval_every=5, save_every=5)
    _, res = _run(_trainer(eval_test=True), spec)
    assert res.status == "completed", (res.error, res.log_tail)
    (rec,) = read_records(tmp_path / "nokl" / "metrics.jsonl")
    assert N.KL not in rec and N.REWARD_MEAN in rec and N.VAL_SCORE in rec  # last step: always evaluated
    assert 0.0 <= rec[N.TEST_SCORE] <= 1.0 and res.test_score == rec[N.TEST_SCORE]  # trainer.eval_test
    assert list_checkpoints(tmp_path / "nokl") == [1]  # last step: always saved


def test_a_diverged_step_is_recorded_then_fails_the_phase(tmp_path):
    """Non-finite grad_norm/kl/entropy: the record is written (agents see it), then the phase raises."""
    from types import SimpleNamespace

    from llmzero.trainers.trl.phase import PhaseSteps, StopFlag, make_callback

    steps = PhaseSteps(spec=_spec(tmp_path, global_offset=3), hp=dict(HP), start_step=0, total=4, stop=StopFlag(),
                       log_every=1)
    cb = make_callback(steps)  # the transformers callback forwards TRL's logs to PhaseSteps
    logs = {"loss": 0.1, "grad_norm": float("nan"), "reward": 0.5, "entropy": 1.0, "learning_rate": 0.01}
    with pytest.raises(FloatingPointError, match=r"grad_norm=nan at step 1: training diverged \(learning_rate=0.01"):
        cb.on_log(None, SimpleNamespace(global_step=1), SimpleNamespace(should_training_stop=False), logs=logs)
    (rec,) = read_records(tmp_path / "metrics.jsonl")
    assert rec[N.STEP] == 1 and rec[N.GLOBAL_STEP] == 4 and math.isnan(rec[N.GRAD_NORM]) and rec[N.REWARD_MEAN] == 0.5


def test_in_flight_scores_use_the_slice_and_the_whole_split_only_for_a_possible_best(tmp_path):
    """PhaseSteps with eval_plan's rule; the evaluator is a stand-in returning scripted scores per split (the real
    greedy scoring is tested on real phases above and below)."""
    from llmzero.metrics.store import MetricSeries
    from llmzero.trainers.trl.eval_plan import EvalPlan
    from llmzero.trainers.trl.phase import PhaseSteps, StopFlag

    slice_scores = iter([0.50, 0.38, 0.60, 0.55, 0.62])  # steps 2, 4, 6, 8, 10
    full_scores = iter([0.45, 0.58, 0.57])
    calls, saves = [], []

    def scripted(model, split):
        calls.append(split)
        return {"score": next(slice_scores if split == "val_slice" else full_scores), "add_2digit": 0.0}

    plan = EvalPlan(eval_every=2, save_every=25, slice_size=64, full_size=256)
    steps = PhaseSteps(spec=_spec(tmp_path, max_steps=10, eval_every=2, save_every=25), hp=dict(HP), start_step=0,
                       total=10, stop=StopFlag(), log_every=1, plan=plan, evaluate=scripted,
                       save=lambda model, step, val: saves.append((step, val and val["prompts"])))
    for step in range(1, 11):
        steps.on_log(step, {"loss": 0.1}, model=None)
    # the whole split only for a new slice record: steps 2 (the first), 6 (.60 > .50) and 10 (.62 > .60)
    assert calls == ["val_slice", "val", "val_slice", "val_slice", "val", "val_slice", "val_slice", "val"]
    series = MetricSeries.load(tmp_path / "metrics.jsonl")
    assert series.series(N.VAL_SCORE) == [(2, 0.5), (4, 0.38), (6, 0.6), (8, 0.55), (10, 0.62)]
    assert series.series(N.VAL_FULL_SCORE) == [(2, 0.45), (6, 0.58), (10, 0.57)]
    assert series.best_val() == (0.58, 6)  # the whole split picks the best, not the slice's .62
    assert series.val_subscores(6) == {"add_2digit": 0.0}
    # saves: a new whole-split best (2, 6) and the last step (its whole-split .57 is no new best)
    assert saves == [(2, 256.0), (6, 256.0), (10, 256.0)]


def test_decoding_merges_the_adapter_only_where_it_is_exact(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from llmzero.trainers.trl.model import adapter_merged

    config = Qwen3Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    for dtype, merges in ((torch.float32, True), (torch.bfloat16, False)):
        model = get_peft_model(Qwen3ForCausalLM(config).to(dtype),
                               LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with adapter_merged(model):
            layer = model.base_model.model.model.layers[0].self_attn.q_proj
            assert bool(layer.merged) is merges
        assert not layer.merged
        for key, value in model.state_dict().items():
            assert torch.allclose(value.float(), before[key].float(), atol=1e-6), key


def test_evaluate_reproduces_the_phase_val_score(parent_phase):
    """evaluate(step_4, "val") in a subprocess == the phase's val record == task.score of greedy_complete."""
    from peft import PeftModel

    from llmzero.models.loading import greedy_complete, load_model_and_tokenizer
    from llmzero.models.resolve import resolve_model_path
    from llmzero.tasks.base import build_task
    from llmzero.trainers.trl.model import policy_from_checkpoint

    ck = checkpoint_dir(parent_phase["dir"], 4)
    rec = next(r for r in parent_phase["records"] if r[N.STEP] == 4)
    scores = _trainer().evaluate(str(ck), "val", HP)
    assert scores == {"score": rec[N.VAL_SCORE], "add_2digit": rec["val/add_2digit"],
                      "add_3digit": rec["val/add_3digit"]}
    task = build_task(TASK)
    base, tok = load_model_and_tokenizer(resolve_model_path(MODEL, task))
    model = PeftModel.from_pretrained(base, str(ck))  # an independent loader of the saved adapter
    val = task.splits()["val"]
    prompts = [e.prompt for e in val]
    independent = greedy_complete(model, tok, prompts, 8)
    assert scores == pytest.approx(task.score(independent, val))
    # the loader evaluate() and the phase use (fresh LoRA + copied weights) decodes exactly the same text
    ours = policy_from_checkpoint(load_model_and_tokenizer(resolve_model_path(MODEL, task))[0], ck)
    assert greedy_complete(ours, tok, prompts, 8) == independent
    assert any(independent)  # non-empty completions: the comparison is not vacuous


def test_final_evaluations_run_in_one_process(parent_phase, monkeypatch):
    """Two checkpoints and the base model in one evaluation process; each adapter comes off before the next."""
    import subprocess as sp

    from llmzero.trainers.base import EvalRequest

    started = []
    real_run = sp.run

    def counting_run(argv, *args, **kwargs):
        started.append(argv)
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr("llmzero.trainers.eval_process.subprocess.run", counting_run)
    val = {r[N.STEP]: r[N.VAL_SCORE] for r in parent_phase["records"] if N.VAL_SCORE in r}
    out = _trainer().evaluate_batch([EvalRequest(str(checkpoint_dir(parent_phase["dir"], 4)), "val", HP),
                                     EvalRequest(None, "val", HP),
                                     EvalRequest(str(checkpoint_dir(parent_phase["dir"], 2)), "val", HP)])
    assert len(started) == 1 and "llmzero.trainers.trl.evaluate" in started[0]
    assert out[0]["score"] == val[4] and out[2]["score"] == val[2]  # as the phase scored them
    assert out[1] == _trainer().evaluate(None, "val", HP)  # the base model, untouched by the adapters


def test_evaluate_base_model_on_test(tiny_env):
    from llmzero.models.tiny import evaluate_greedy
    from llmzero.tasks.base import build_task

    scores = _trainer().evaluate(None, "test", HP)
    assert set(scores) == {"score", "add_2digit", "add_3digit"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores == pytest.approx(evaluate_greedy(tiny_env["path"], build_task(TASK), "test", max_new_tokens=8))
    with pytest.raises(ValueError, match="split='train'"):
        _trainer().evaluate(None, "train", HP)


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def test_child_phase_loads_parent_weights_and_kl_reference_is_the_base_model(parent_phase, tmp_path):
    """In-process: the child's trainer model == the parent's step-2 checkpoint before any training, and the
    reference TRL uses for the KL (adapters disabled) == the untouched base model."""
    import torch
    from peft import PeftModel
    from trl.trainer.utils import use_adapter

    from llmzero.models.loading import load_model_and_tokenizer
    from llmzero.models.resolve import resolve_model_path
    from llmzero.tasks.base import build_task
    from llmzero.trainers.trl.phase import PhaseRunner

    parent_ck = checkpoint_dir(parent_phase["dir"], 2)
    spec = _spec(tmp_path / "child", node_id=1, init_checkpoint=str(parent_ck), global_offset=12,
                 hparams={**HP, "learning_rate": 1e-3, "kl_coef": 0.05})
    tr = _trainer()
    runner = PhaseRunner({"spec": spec.to_dict(), "task": tr.task, "model": tr.model, "trainer": tr.options()})
    runner.prepare()
    child = runner.trainer.model
    child.eval()
    assert runner.trainer.beta == 0.05 and runner.trainer.ref_model is None
    assert "ref" not in child.peft_config  # TRL will take the reference with adapters disabled

    task = build_task(TASK)
    path = resolve_model_path(MODEL, task)
    tok = load_model_and_tokenizer(path)[1]
    ids = tok(["12+34=", "7*56=", "99+99="], return_tensors="pt", padding=True)["input_ids"]
    parent = PeftModel.from_pretrained(load_model_and_tokenizer(path)[0], str(parent_ck)).eval()
    base = load_model_and_tokenizer(path)[0].eval()

    policy = _logits(child, ids)
    assert torch.allclose(policy, _logits(parent, ids), atol=1e-5)
    with use_adapter(child, adapter_name="ref" if "ref" in child.peft_config else None):  # TRL's own switch
        reference = _logits(child, ids)
    assert torch.allclose(reference, _logits(base, ids), atol=1e-5)
    assert (policy - reference).abs().max().item() > 1e-4  # the loaded adapter is not a no-op
    # fresh optimizer: none exists before train(); the LoRA rank is the parent's
    assert runner.trainer.optimizer is None and child.peft_config["default"].r == 4

    # a rank change along a path is refused with a clear error
    bad = _spec(tmp_path / "child2", node_id=2, init_checkpoint=str(parent_ck), hparams={**HP, "lora_rank": 8})
    with pytest.raises(ValueError, match="lora_rank=8 does not match the checkpoint"):
        PhaseRunner({"spec": bad.to_dict(), "task": tr.task, "model": tr.model, "trainer": tr.options()}).prepare()


def test_resume_own_continues_from_the_last_checkpoint(parent_phase, tmp_path):
    import shutil

    out = tmp_path / "node_0"
    shutil.copytree(parent_phase["dir"], out)
    # a crash after step 3: checkpoint 4 never completed, the search truncated metrics to step 2
    shutil.rmtree(checkpoint_dir(out, 4))
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")  # steps 1..3: the backend drops step 3
    (out / "result.json").unlink()
    spec = _spec(out, global_offset=10, resume_own=True)
    _, res = _run(_trainer(), spec)
    assert res.status == "completed", (res.error, res.log_tail)
    recs = read_records(out / "metrics.jsonl")
    assert [r[N.STEP] for r in recs] == [1, 2, 3, 4] and [r[N.GLOBAL_STEP] for r in recs] == [11, 12, 13, 14]
    assert recs[:2] == parent_phase["records"][:2]  # kept as they were
    assert res.checkpoints == [2, 4] and N.VAL_SCORE in recs[-1]
    log = (out / "log.txt").read_text()
    assert "phase node=0 steps 3..4" in log and f"loaded adapter weights from {checkpoint_dir(out, 2)}" in log
    assert json.loads((checkpoint_dir(out, 4) / "phase.json").read_text())["init_checkpoint"] == str(
        checkpoint_dir(out, 2))


def test_sigterm_stops_gracefully_with_a_final_checkpoint(tiny_env, tmp_path):
    out = tmp_path / "node_3"
    spec = _spec(out, node_id=3, max_steps=500, eval_every=1000, save_every=1000)  # no periodic eval or save
    handle = _trainer().start(spec)
    try:
        deadline = time.monotonic() + 180
        seen = []
        while len(seen) < 2 and time.monotonic() < deadline and not handle.done():
            seen.extend(handle.poll())
            time.sleep(0.05)
        assert len(seen) >= 2, (out / "log.txt").read_text()[-3000:]
        handle.stop("overtaken by the incumbent")
        handle.wait(120)
    finally:
        handle.kill()  # no-op once it has ended
    res = handle.result()
    assert res.status == "early_stopped", (res.error, res.log_tail)
    assert 2 <= res.steps_done < 500
    assert res.checkpoints == [res.steps_done]  # the final adapter, saved at the step it stopped on
    recs = read_records(out / "metrics.jsonl")
    assert recs[-1][N.STEP] == res.steps_done and N.VAL_SCORE in recs[-1]
    assert json.loads((checkpoint_dir(out, res.steps_done) / "val.json").read_text())["score"] == recs[-1][N.VAL_SCORE]
    assert "overtaken by the incumbent" in (out / "log.txt").read_text()
    assert json.loads((out / "result.json").read_text())["status"] == "early_stopped"


def test_impossible_batch_fails_the_phase_with_its_error(tiny_env, tmp_path):
    tr = _trainer(micro_batch_size=3)
    hp = {**HP, "batch_size": 2, "rollouts": 4}
    assert tr.check(hp)  # the search would refuse it; start() bypasses check()
    _, res = _run(tr, _spec(tmp_path / "node_4", node_id=4, hparams=hp))
    assert res.status == "failed"
    assert "batch_size=2 × rollouts=4 = 8 completions per optimizer step is not divisible by" in res.error
    assert "ValueError" in res.error and "traceback" in res.error
    assert res.checkpoints == [] and res.steps_done == 0 and "phase failed" in res.log_tail
    assert not (tmp_path / "node_4" / "metrics.jsonl").exists()

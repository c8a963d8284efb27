"""Config helpers of benchmarks/bench_trl_phase.py: the task, trainer options, hyperparameters, model and GRPO
kwargs of one TRL phase, read from conf/ and resolved the way the search and phase.py resolve them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(path.read_text()) or {}
    raw.pop("defaults", None)
    return raw


def task_config(train_size: int | None) -> dict[str, Any]:
    cfg = _yaml(ROOT / "conf" / "task" / "arithmetic.yaml")
    cfg.setdefault("seed", 0)
    if train_size:
        cfg["train_size"] = int(train_size)
    return cfg


def trainer_options() -> dict[str, Any]:
    """trainer=trl as the search instantiates it: the schema's defaults under conf/trainer/trl.yaml's settings
    (eval_every/save_every are set per mode)."""
    import dataclasses

    from llmzero.config.schema import TRLTrainerConfig

    cfg = {**dataclasses.asdict(TRLTrainerConfig()), **_yaml(ROOT / "conf" / "trainer" / "trl.yaml")}
    for key in ("_target_", "defaults"):
        cfg.pop(key, None)
    return cfg


def hyperparameters(args: argparse.Namespace, task_cfg: dict[str, Any]) -> dict[str, Any]:
    """Search-space defaults < task.hparams < model(tiny).hparams < command line, as llmzero.app.root_hparams."""
    space = _yaml(ROOT / "conf" / "search" / "default.yaml")["space"]
    hp = {k: v.get("default") for k, v in space.items()}
    hp.update(task_cfg.get("hparams") or {})
    hp.update(_yaml(ROOT / "conf" / "model" / "tiny.yaml").get("hparams") or {})
    hp.update({"batch_size": args.batch_size, "rollouts": args.rollouts, "response_length": args.response_length,
               "max_steps": 0})
    return hp


def ensure_model(task_cfg: dict[str, Any], sft_steps: int | None, cache: Path) -> Path:
    """builtin:tiny with conf/model/tiny.yaml's build options; sft_steps=None keeps its warm start as configured (the
    shipped model, for the default task)."""
    from llmzero.models.embedded import shipped_for
    from llmzero.models.tiny import ensure_tiny_model, resolve_options
    from llmzero.tasks.base import build_task

    build = dict(_yaml(ROOT / "conf" / "model" / "tiny.yaml").get("build") or {})
    if sft_steps is not None:
        build["sft_steps"] = int(sft_steps)
    task, options = build_task(task_cfg), resolve_options(build)
    return shipped_for(task, options) or ensure_tiny_model(task, options, cache_dir=cache, progress=False)


def phase_grpo_kwargs(hp: dict[str, Any], steps: int, seed: int, opts: dict[str, Any], output_dir: str,
                      use_cpu: bool, bf16: bool) -> dict[str, Any]:
    """Exactly the call phase.py (PhaseRunner.prepare) makes for a fresh phase (start_step 0, no pass-through)."""
    from llmzero.trainers.trl.config_map import grpo_kwargs

    return grpo_kwargs(hp, max_steps=steps, output_dir=output_dir, seed=seed, use_cpu=use_cpu,
                       loss_type=str(opts.get("loss_type") or "dapo"),
                       micro_batch_size=int(opts.get("micro_batch_size") or 0),
                       gradient_checkpointing=bool(opts.get("gradient_checkpointing", False)), bf16=bf16,
                       passthrough={})


def device_and_dtype(opts: dict[str, Any]) -> tuple[str, str]:
    """What phase.py selects (select_device / select_dtype), as strings for the bare config."""
    from llmzero.trainers.trl.model import select_device, select_dtype

    device = select_device(str(opts.get("device") or "auto"))
    dtype = select_dtype(opts.get("dtype"), device)
    return device, str(dtype).replace("torch.", "")

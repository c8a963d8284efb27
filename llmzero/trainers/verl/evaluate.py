"""Greedy scores of checkpoints with verl: `python -m llmzero.trainers.verl.evaluate <eval_config.json>`.

Each request (a checkpoint or the base model, a split) is one validation-only verl run (`trainer.val_only=true`,
`val_before_train=true`) over that split, with the checkpoint's adapter as `model.lora_adapter_path` (the base model:
a fresh adapter, whose zero-initialised B matrices leave the model unchanged), generating up to the request's
max_new_tokens (model.eval_max_new_tokens: 8192 for Qwen3, the paper's §4.1). Its scores are read from verl's file
logger the same way a phase's validation is (metrics_map.py), so where the lengths agree a test score and a phase's
val score are computed alike.
Writes {"results": [{"scores": {...}} or {"error": "..."}, ...]} to the config's "output".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ...state.phase_dir import adapter_rank
from ...tasks.base import summarise
from ..child_main import each_request, eval_main
from .launch import model_inputs, options_from, run_driver, task_files
from .metrics_map import validation
from .overrides import RunFiles, phase_overrides



def eval_hparams(request: dict[str, Any]) -> dict[str, Any]:
    """The request's settings with the final-score length (VerlTrainer.eval_length) as verl's response length."""
    hp = dict(request["hparams"])
    if request.get("max_new_tokens"):
        hp["response_length"] = int(request["max_new_tokens"])
    return hp


def score_one(config: dict[str, Any], config_path: str, request: dict[str, Any], index: int) -> dict[str, float]:
    opts, topology = options_from(dict(config.get("trainer") or {}))
    split = request["split"]
    folder = Path(config["workdir"]) / f"request{index}"
    data = task_files(config["task"], folder, config_path, ("train", split))  # verl builds its train loader even when not training
    if split not in data.files:
        raise ValueError(f"task {config['task'].get('name')!r} has no {split} split to score")
    path, templated, prompt_len = model_inputs(config["model"], data.task, data.splits[split], opts.max_prompt_length)
    hp = eval_hparams(request)
    if request["checkpoint"]:
        hp["lora_rank"] = adapter_rank(request["checkpoint"])
    run = RunFiles(model_path=path, train_files=data.files["train"], val_files=[data.files[split]],
                   reward_module=data.reward_module, phase_config=config_path, search=data.search,
                   checkpoint_dir=str(folder / "checkpoints"),
                   phase_dir=str(folder), max_prompt_length=prompt_len, adapter=request["checkpoint"],
                   chat_template=templated,
                   enable_thinking=config["model"].get("enable_thinking") if templated else None,
                   experiment=f"eval{index}-{split}",
                   extra={"trainer.val_only": True, "trainer.val_before_train": True})
    scored: dict[str, dict[str, float]] = {}
    rc = run_driver(opts.driver, phase_overrides(hp, 1, opts, topology, run), run,
                    lambda line: scored.update(validation(line.get("data") or {})))
    if split not in scored:
        raise RuntimeError(f"verl ({opts.driver}) exited with status {rc} without validation metrics for {split}")
    return summarise(data.task, scored[split], data.counts[split])


def main(argv: list[str] | None = None) -> int:
    return eval_main(argv, "llmzero.trainers.verl.evaluate", lambda config, path: each_request(
        list(config["requests"]), lambda i, request: score_one(config, path, request, i)))


if __name__ == "__main__":
    sys.exit(main())

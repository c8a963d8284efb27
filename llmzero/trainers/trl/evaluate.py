"""Greedy scoring of a LoRA checkpoint (or the base model) on a split, in its own process.

    python -m llmzero.trainers.trl.evaluate <eval_config.json>

eval_config.json: {"task": ..., "model": ..., "trainer": options, "checkpoint": dir or null, "split": "val"|"test",
"max_new_tokens": int, "output": path}. Writes {"scores": {"score": ..., <subtask>: ...}} or {"error": ...} to
`output`. The scoring is the phase's own (model.greedy_scores on a fresh LoRA loaded with the checkpoint's weights),
so evaluate(step_k, "val") reproduces the val/score the phase recorded at step k.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from ...state.atomic import write_json_atomic


def score(config: dict[str, Any]) -> dict[str, float]:
    import torch

    from ...tasks.base import build_task
    from .model import (
        greedy_scores,
        load_base,
        policy_from_checkpoint,
        select_device,
        select_dtype,
    )

    opts = dict(config.get("trainer") or {})
    threads = int(opts.get("torch_threads") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    task = build_task(dict(config["task"]))
    split = str(config["split"])
    examples = task.splits()[split]
    device = select_device(str(opts.get("device") or "auto"))
    base, tokenizer, _ = load_base(dict(config["model"]), task, device=device,
                                   dtype=select_dtype(opts.get("dtype"), device))
    model = policy_from_checkpoint(base, config.get("checkpoint"))
    return greedy_scores(model, tokenizer, task, examples, int(config["max_new_tokens"]),
                         int(opts.get("eval_batch_size") or 64))


def main(argv: list[str] | None = None) -> int:
    from ..subprocess_phase import child_config

    config = child_config(argv, "python -m llmzero.trainers.trl.evaluate <eval_config.json>")
    if config is None:
        return 2
    try:
        scores = score(config)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc()
        write_json_atomic(config["output"], {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    write_json_atomic(config["output"], {"scores": scores})
    print(json.dumps(scores), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

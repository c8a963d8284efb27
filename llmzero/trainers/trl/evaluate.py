"""Greedy scoring of LoRA checkpoints (or the base model) on a split, all in one process.

    python -m llmzero.trainers.trl.evaluate <eval_config.json>

eval_config.json: {"task": ..., "model": ..., "trainer": options, "requests": [{"checkpoint": dir or null,
"split": "val"|"test", "max_new_tokens": int}, ...], "output": path}. The base model is loaded once; each
checkpoint's adapter is put on it for its request and taken off again. Writes {"results": [{"scores": {"score": ...,
<subtask>: ...}} or {"error": ...}, ...]} to `output`, one entry per request, in order. The scoring is the phase's
own (model.greedy_scores), so evaluating step_k on "val" reproduces the val/score the phase recorded at step k.
"""

from __future__ import annotations

import sys
from typing import Any

from ..child_main import each_request, eval_main


def score_all(config: dict[str, Any]) -> list[dict[str, Any]]:
    import torch

    from ...tasks.base import build_task
    from .backend import options_from
    from .model import adapter_merged, greedy_scores, load_base, policy_from_checkpoint, rendered, select_device, select_dtype

    opts, _ = options_from(dict(config.get("trainer") or {}))
    if opts.torch_threads > 0:
        torch.set_num_threads(opts.torch_threads)
    task = build_task(dict(config["task"]))
    splits = task.splits()
    device = select_device(opts.device)
    base, tokenizer, _ = load_base(dict(config["model"]), task, device=device, dtype=select_dtype(opts.dtype, device))
    splits = rendered(splits, tokenizer, dict(config["model"]))  # the phases' own prompts (chat template or not)

    def score(index: int, req: dict[str, Any]) -> dict[str, float]:
        nonlocal base
        model = policy_from_checkpoint(base, req.get("checkpoint"))
        try:
            with adapter_merged(model):  # as the phase scores, so val/score is reproduced
                return greedy_scores(model, tokenizer, task, splits[str(req["split"])], int(req["max_new_tokens"]),
                                     opts.eval_batch_size)
        finally:
            if model is not base:
                base = model.unload()  # the base model again, for the next request

    return each_request(list(config["requests"]), score)


def main(argv: list[str] | None = None) -> int:
    return eval_main(argv, "llmzero.trainers.trl.evaluate", lambda config, _path: score_all(config))


if __name__ == "__main__":
    sys.exit(main())

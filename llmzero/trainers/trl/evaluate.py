"""Greedy scoring of LoRA checkpoints (or the base model) on a split, all in one process.

    python -m llmzero.trainers.trl.evaluate <eval_config.json>

eval_config.json: {"task": ..., "model": ..., "trainer": options, "requests": [{"checkpoint": dir or null,
"split": "val"|"test", "max_new_tokens": int}, ...], "output": path}. The base model is loaded once; each
checkpoint's adapter is put on it for its request and taken off again. Writes {"results": [{"scores": {"score": ...,
<subtask>: ...}} or {"error": ...}, ...]} to `output`, one entry per request, in order. The scoring is the phase's
own (model.greedy_scores), so evaluating step_k on "val" reproduces the val/score the phase recorded at step k.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

from ...atomic import write_json_atomic

log = logging.getLogger("llmzero.evaluate")


def score_all(config: dict[str, Any]) -> list[dict[str, Any]]:
    import torch

    from ...tasks.base import build_task
    from .backend import options_from
    from .model import greedy_scores, load_base, policy_from_checkpoint, rendered, select_device, select_dtype

    opts, _ = options_from(dict(config.get("trainer") or {}))
    if opts.torch_threads > 0:
        torch.set_num_threads(opts.torch_threads)
    task = build_task(dict(config["task"]))
    splits = task.splits()
    device = select_device(opts.device)
    base, tokenizer, _ = load_base(dict(config["model"]), task, device=device, dtype=select_dtype(opts.dtype, device))
    splits = rendered(splits, tokenizer, dict(config["model"]))  # the phases' own prompts (chat template or not)
    results: list[dict[str, Any]] = []
    for i, req in enumerate(config["requests"], 1):
        t0, ckpt = time.monotonic(), req.get("checkpoint")
        try:
            model = policy_from_checkpoint(base, ckpt)
            try:
                scores = greedy_scores(model, tokenizer, task, splits[str(req["split"])], int(req["max_new_tokens"]),
                                       opts.eval_batch_size)
            finally:
                if model is not base:
                    base = model.unload()  # the base model again, for the next request
            results.append({"scores": scores})
            log.info("[%d/%d] %s on %s: score %.4f (%.1fs)", i, len(config["requests"]), ckpt or "base model",
                     req["split"], scores["score"], time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - one failed request must not cost the others
            log.error("[%d/%d] %s on %s failed:\n%s", i, len(config["requests"]), ckpt or "base model", req["split"],
                      traceback.format_exc())
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def main(argv: list[str] | None = None) -> int:
    from ..subprocess_phase import child_config

    config = child_config(argv, "python -m llmzero.trainers.trl.evaluate <eval_config.json>")
    if config is None:
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    try:
        results = score_all(config)
    except BaseException as exc:  # noqa: BLE001 - loading failed: every request fails with the reason
        traceback.print_exc()
        results = [{"error": f"{type(exc).__name__}: {exc}"} for _ in config.get("requests", [])]
        write_json_atomic(config["output"], {"results": results})
        return 1
    write_json_atomic(config["output"], {"results": results})
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

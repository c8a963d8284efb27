"""Our task's reward with verl's reward-function signature.

verl loads `compute_score` from the file named by `reward.custom_reward_function.path` (the phase writes a two-line
module there, data.reward_module) and calls it once per response, with `reward.custom_reward_function.reward_kwargs`
added: here `phase_config`, the phase's phase_config.json, from which the task is built once per process. The returned
dict's `score` is the reward; `acc` makes verl report it as the core validation metric
(`val-core/<data_source>/acc/mean@1`), whose data_source names split and subtask (data.py). A task with
`reward_details` (ChemCoT) adds the same extra keys to every response; verl reports their means as
`val-aux/<data_source>/<key>/mean@1`, from which the task's `figures` rebuild its benchmark's own numbers.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ...tasks.base import Example, Task


@functools.lru_cache(maxsize=4)
def task_of(phase_config: str) -> Task:
    """The task a phase trains on, built once per process (a benchmark reads its rows once)."""
    from ...tasks.base import build_task

    return build_task(json.loads(Path(phase_config).read_text())["task"])


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict[str, Any] | None = None,
                  *, phase_config: str, **kwargs: Any) -> dict[str, float]:
    info = extra_info or {}
    example = Example(prompt=str(info.get("prompt", "")), answer=str(ground_truth),
                      subtask=str(info.get("subtask", "all")))
    task = task_of(phase_config)
    detailed = getattr(task, "reward_details", None)
    if callable(detailed):  # the parts a benchmark's own figures are rebuilt from (task.figures, metrics_map.py)
        parts = {k: float(v) for k, v in detailed(solution_str, example).items()}
        return {**parts, "acc": parts["score"]}
    reward = float(task.reward(solution_str, example))
    return {"score": reward, "acc": reward}

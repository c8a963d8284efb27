"""Task interface: what a verifiable RL task gives the trainers.

A task is any class named by `task._target_`; it is built from the task config (a plain dict)
with `build_task`. It provides:

    name: str
    subtasks: list[str]
    splits() -> dict[str, list[Example]]      "train", "val", "test"; deterministic for a seed
    reward(completion, example) -> float       the verifiable reward in [0, 1]
    score(completions, examples) -> dict       {"score": the aggregate, <subtask>: mean, ...}

and optionally

    reference(example) -> str                  a response that earns reward 1 (builtin:tiny's warm-start target;
                                               example.answer when absent)
    tool() -> SearchTool | None                a search tool the rollouts and validation use (tasks/retrieval.py)
    summarise(subscores, counts) -> dict       score() from per-subtask means and example counts, for a task whose
                                               score is not the mean over examples (a backend that sees only
                                               per-subtask means, verl, calls it through `summarise` below)

Prompts are plain text; a model with a chat template gets them through it (models/loading.prompt_renderer).
`Example.answer` is what the reward checks (a JSON record when it needs several fields: tasks/benchmark.py).
Hub-backed tasks load with `datasets.load_dataset` inside `splits()` (tasks/hub.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    subtask: str = "all"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Task(Protocol):
    name: str
    subtasks: list[str]

    def splits(self) -> dict[str, list[Example]]: ...

    def reward(self, completion: str, example: Example) -> float: ...

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]: ...


def mean_scores(rewards: Sequence[float], examples: Sequence[Example]) -> dict[str, float]:
    """Overall mean and per-subtask means, the `val/score` and `val/<subtask>` of the metrics file."""
    if len(rewards) != len(examples):
        raise ValueError(f"{len(rewards)} rewards for {len(examples)} examples")
    by_sub: dict[str, list[float]] = defaultdict(list)
    for r, ex in zip(rewards, examples):
        by_sub[ex.subtask].append(r)
    out = {"score": sum(rewards) / len(rewards) if rewards else 0.0}
    for sub, vals in sorted(by_sub.items()):
        out[sub] = sum(vals) / len(vals)
    return out


def example_mean(subscores: Mapping[str, float], counts: Mapping[str, int]) -> float:
    """The mean over examples, from per-subtask means weighted by their example counts."""
    total = sum(int(counts.get(k, 0)) for k in subscores)
    return sum(v * int(counts.get(k, 0)) for k, v in subscores.items()) / total if total else 0.0


def summarise(task: Any, subscores: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
    """What task.score() reports, rebuilt from per-subtask means and example counts: the task's own `summarise` when
    it has one, else the mean over examples beside the subtask means (mean_scores)."""
    own = getattr(task, "summarise", None)
    if callable(own):
        return dict(own(dict(subscores), dict(counts)))
    return {"score": example_mean(subscores, counts), **subscores}


def task_tool(task: Any) -> Any | None:
    """The task's search tool (its optional `tool()`), or None for a task without one."""
    tool = getattr(task, "tool", None)
    return tool() if callable(tool) else None


def build_task(cfg: dict[str, Any]) -> Task:
    """Instantiate the task named by cfg['_target_'] with the rest of its config (Hydra's instantiate)."""
    from hydra.utils import instantiate

    if not cfg.get("_target_"):
        raise ValueError(f"task config for {cfg.get('name')!r} has no _target_ naming its class")
    return instantiate(dict(cfg), _convert_="all")

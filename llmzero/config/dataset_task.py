"""Settings of `task=dataset`: a task made from a user's own data files (or a hub dataset) and a reward named or
given as a file (llmzero/tasks/dataset.py). Every default is here, once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from .schema import ConfigError, TaskConfig, _require, typed

VERIFIERS = ("exact", "math", "choice", "boxed", "tag")  # the built-in rewards (llmzero/tasks/verifiers.py)
AUTO = "auto"  # a reward written and checked before the search (llmzero/tasks/auto_reward.py)


@dataclass
class FieldsConfig:
    """Which column holds what; a dotted name reaches into a nested column (verl's `reward_model.ground_truth`)."""

    prompt: str = "prompt"  # text, or verl's list of chat messages
    answer: str = "answer"
    subtask: Optional[str] = None  # per-subtask scores (val/<subtask>) when set


@dataclass
class RewardConfig:
    """A built-in verifier by name, `path` + the function `name` in that file, with verl's signature
    compute_score(data_source, solution_str, ground_truth, extra_info) -> float or {"score": float, ...}, or `auto`:
    written by the agent's LLM (or picked among the built-ins offline) and checked on held-out rows before any
    training (llmzero/tasks/auto_reward.py)."""

    name: str = "exact"
    path: Optional[str] = None
    tag: str = "answer"  # the tag verifier reads <tag>...</tag>
    # auto only: the rows the LLM reads, the rows it never sees that check its function, how many functions it
    # may write, and the time one call may take on any response
    shown_rows: int = 8
    held_out_rows: int = 24
    max_attempts: int = 3
    call_limit_s: float = 2.0

    def __post_init__(self) -> None:
        allowed = f"one of {[*VERIFIERS, AUTO]}, or the function's name in task.reward.path"
        _require(bool(self.name), "task.reward.name", self.name, allowed)
        if self.path is None:
            _require(self.name in (*VERIFIERS, AUTO), "task.reward.name", self.name,
                     f"one of {[*VERIFIERS, AUTO]} (or set task.reward.path to a file whose function it names)")
        else:
            _require(self.name != AUTO, "task.reward.name", self.name,
                     "a function of task.reward.path (auto writes its own file: leave task.reward.path unset)")
        _require(self.shown_rows >= 1, "task.reward.shown_rows", self.shown_rows, "an int ≥ 1")
        _require(self.held_out_rows >= 2, "task.reward.held_out_rows", self.held_out_rows, "an int ≥ 2")
        _require(self.max_attempts >= 1, "task.reward.max_attempts", self.max_attempts, "an int ≥ 1")
        _require(self.call_limit_s > 0, "task.reward.call_limit_s", self.call_limit_s, "seconds > 0")


def reward_settings(value: Any) -> RewardConfig:
    """`task.reward` as settings: the section, or its one-word form (`task.reward=auto`, `=math`, `=my_reward.py`,
    `=my_reward.py:fn`)."""
    if isinstance(value, RewardConfig):
        return value
    if value is None or isinstance(value, str):
        text = str(value or "")
        file, _, function = text.partition(":") if ".py" in text else ("", "", text)
        if file:
            return RewardConfig(name=function or "compute_score", path=file)
        _require(text in (*VERIFIERS, AUTO), "task.reward", value,
                 f"one of {[*VERIFIERS, AUTO]}, a reward file (my_reward.py or my_reward.py:function), or the "
                 "section (task.reward.name=..., task.reward.path=...)")
        return RewardConfig(name=text)
    if isinstance(value, (dict, DictConfig)):
        return typed(RewardConfig, value, "task.reward")
    raise ConfigError(f"task.reward={value!r} is not valid: expected a verifier's name, auto, a reward file or the "
                      "section (task.reward.name=..., task.reward.path=...)")


@dataclass
class DatasetTaskConfig(TaskConfig):
    _target_: str = "llmzero.tasks.dataset.DatasetTask"
    name: str = "dataset"
    train_size: int = 5000  # the paper's caps (Appendix B.1), drawn with task.seed
    val_size: int = 500
    test_size: int = 500
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    template: Optional[str] = None  # the prompt built from the row, e.g. "{question}\nPut the answer in \\boxed{{}}."
    system_prompt: Optional[str] = None  # text put before every prompt
    # Any, so that the one-word form `task.reward=auto` can stand for the section (reward_settings)
    reward: Any = field(default_factory=lambda: dataclasses.asdict(RewardConfig()))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reward = reward_settings(self.reward)
        _require(bool(self.dataset or self.data_files), "task.data_files", self.data_files,
                 "a file, glob or folder of json/jsonl/parquet/csv (or task.dataset=<hub id>)")

"""Settings of `task=dataset`: a task made from a user's own data files (or a hub dataset) and a reward named or
given as a file (llmzero/tasks/dataset.py). Every default is here, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .schema import TaskConfig, _require

VERIFIERS = ("exact", "math", "choice", "boxed", "tag")  # the built-in rewards (llmzero/tasks/verifiers.py)


@dataclass
class FieldsConfig:
    """Which column holds what; a dotted name reaches into a nested column (verl's `reward_model.ground_truth`)."""

    prompt: str = "prompt"  # text, or verl's list of chat messages
    answer: str = "answer"
    subtask: Optional[str] = None  # per-subtask scores (val/<subtask>) when set


@dataclass
class RewardConfig:
    """A built-in verifier by name, or `path` + the function `name` in that file, with verl's signature
    compute_score(data_source, solution_str, ground_truth, extra_info) -> float or {"score": float, ...}."""

    name: str = "exact"
    path: Optional[str] = None
    tag: str = "answer"  # the tag verifier reads <tag>...</tag>

    def __post_init__(self) -> None:
        _require(bool(self.name), "task.reward.name", self.name,
                 f"one of {list(VERIFIERS)}, or the function's name in task.reward.path")
        if self.path is None:
            _require(self.name in VERIFIERS, "task.reward.name", self.name,
                     f"one of {list(VERIFIERS)} (or set task.reward.path to a file whose function it names)")


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
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(bool(self.dataset or self.data_files), "task.data_files", self.data_files,
                 "a file, glob or folder of json/jsonl/parquet/csv (or task.dataset=<hub id>)")

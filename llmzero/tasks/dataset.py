"""`task=dataset`: a task from a user's own rows and reward (settings: llmzero/config/dataset_task.py).

Rows come from local files (json, jsonl, parquet, csv) or a hub dataset, through the same loader and split rules as
the benchmarks (hub.py: the data's own test split kept, the paper's 5000/500/500 otherwise, drawn with task.seed).
`task.fields` names the prompt, answer and optional subtask columns; a dotted name reaches into a nested column, so
verl's parquet layout reads as is (`prompt` a list of chat messages, `reward_model.ground_truth`, `data_source`).
The reward is a built-in verifier (verifiers.py) or a function in a file with verl's signature,
compute_score(data_source, solution_str, ground_truth, extra_info), the same file under trainer=trl and verl.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from pathlib import Path
from typing import Any, Callable

from ..config.dataset_task import AUTO, reward_settings
from .base import Example
from .benchmark import BenchmarkTask, pack, unpack
from .hub import TaskDataError
from .verifiers import VERIFIER_REFERENCE, make_verifier

__all__ = ["DatasetTask", "load_reward_file"]

_MISSING = object()


def field_value(row: dict[str, Any], name: str) -> Any:
    """The value a dotted field name reaches (`reward_model.ground_truth`); _MISSING when there is none."""
    value: Any = row
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def prompt_text(value: Any) -> tuple[str, str]:
    """(system text, prompt text) of a prompt column: plain text, or verl's list of {role, content} messages."""
    if isinstance(value, (list, tuple)) and all(isinstance(m, dict) and "content" in m for m in value):
        system = "\n\n".join(str(m["content"]) for m in value if m.get("role") == "system")
        user = "\n\n".join(str(m["content"]) for m in value if m.get("role") != "system")
        return system, user
    return "", "" if value is None else str(value)


def load_reward_file(path: str, name: str) -> Callable[..., Any]:
    """The function `name` of the Python file at `path`, or a TaskDataError naming the key and what is there."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise TaskDataError(f"task.reward.path={path!r} is not a file (give the .py file that defines {name})")
    spec = importlib.util.spec_from_file_location(f"llmzero_user_reward_{abs(hash(str(file.resolve())))}", file)
    if spec is None or spec.loader is None:
        raise TaskDataError(f"task.reward.path={path!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - whatever the user's file raises on import is its error
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TaskDataError(f"task.reward.path={path!r} does not import: {type(exc).__name__}"
                            + (f": {detail}" if detail else "")) from None
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
        raise TaskDataError(f"task.reward.name={name!r} is not a function of {path} (its functions: {found or 'none'})")
    return function


def _score_of(value: Any) -> float:
    """A reward function's return as a number: a number, or verl's dict with "score"; anything else (or a
    non-finite number) is 0."""
    if isinstance(value, dict):
        value = value.get("score", 0.0)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


class DatasetTask(BenchmarkTask):
    def __init__(self, name: str = "dataset", fields: dict[str, Any] | None = None, template: str | None = None,
                 system_prompt: str | None = None, reward: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.fields = {"prompt": "prompt", "answer": "answer", "subtask": None, **(fields or {})}
        self.template, self.system_prompt = template, system_prompt
        self.reward_cfg = reward_settings(reward if reward is not None else {})
        self.columns = tuple(f.split(".")[0] for f in (self.fields["prompt"], self.fields["answer"],
                                                        self.fields["subtask"]) if f)
        self._reward_fn: Callable[[Example, str], float] | None = None
        if self.reward_cfg.path:
            load_reward_file(self.reward_cfg.path, self.reward_cfg.name)  # fail at build time, by name

    # -- rows -> examples --------------------------------------------------------------------------
    def _field(self, row: dict[str, Any], key: str) -> Any:
        name = self.fields[key]
        value = field_value(row, name)
        if value is _MISSING:
            raise TaskDataError(f"task.fields.{key}={name!r} is not a column of {self._where()}: its rows have "
                                f"{sorted(map(str, row))}")
        return value

    def _check_columns(self, row: dict[str, Any]) -> None:
        for key in ("prompt", "answer", "subtask"):
            if self.fields.get(key):
                self._field(row, key)

    def to_example(self, row: dict[str, Any]) -> Example:
        system, prompt = prompt_text(self._field(row, "prompt"))
        if self.template:
            try:
                prompt = self.template.format(**{k: v for k, v in row.items() if isinstance(k, str)}, prompt=prompt)
            except (KeyError, IndexError, ValueError) as exc:
                raise TaskDataError(f"task.template={self.template!r} cannot be filled from a row ({exc}); its "
                                    f"columns are {sorted(map(str, row))}") from None
        head = "\n\n".join(t for t in (self.system_prompt or "", system) if t)
        answer = self._field(row, "answer")
        subtask = str(self._field(row, "subtask")) if self.fields.get("subtask") else "all"
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        record = pack(answer=answer if isinstance(answer, str) else json.dumps(answer),
                      data_source=str(row.get("data_source") or self.name), extra_info=extra)
        return Example(prompt=f"{head}\n\n{prompt}" if head else prompt, answer=record, subtask=subtask)

    # -- rewards -----------------------------------------------------------------------------------
    def _reward(self) -> Callable[[Example, str], float]:
        if self._reward_fn is None:
            cfg = self.reward_cfg
            if cfg.name == AUTO:
                raise TaskDataError("task.reward=auto is settled by the search before any training (it writes "
                                    "<search.dir>/reward/); a task built outside a search needs task.reward.name "
                                    "or task.reward.path")
            if cfg.path:
                function = load_reward_file(cfg.path, cfg.name)

                def by_file(example: Example, response: str) -> float:
                    rec = unpack(example.answer)
                    try:
                        return _score_of(function(rec.get("data_source", self.name), response, rec.get("answer", ""),
                                                  rec.get("extra_info") or {}))
                    except Exception:  # noqa: BLE001 - a user's reward that raises scores 0, it never kills a rollout
                        return 0.0
                self._reward_fn = by_file
            else:
                verify = make_verifier(cfg.name, cfg.tag)
                self._reward_fn = lambda example, response: verify(response, str(unpack(example.answer).get("answer")))
        return self._reward_fn

    def reward(self, completion: str, example: Example) -> float:
        return self._reward()(example, completion)

    def reference(self, example: Example) -> str:
        answer = str(unpack(example.answer).get("answer", ""))
        write = VERIFIER_REFERENCE.get(self.reward_cfg.name)
        return write(answer, self.reward_cfg.tag) if write and not self.reward_cfg.path else answer


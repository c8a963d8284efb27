"""What the paper's benchmark tasks share (paper §4.1, Appendix B.1): rows read from the hub or a local copy,
cut into the paper's splits, turned into examples, scored per subtask.

A benchmark subclasses `BenchmarkTask` and writes how one row becomes an `Example` (`to_example`), its reward, and
what a right answer looks like (`reference`, the warm-start target of `builtin:tiny`). It may set rows aside before
the cut (`set_aside`: rows its reward cannot score, e.g. ChemCoT's protein-activity optimisation) and replace the
aggregate (`score`). When a reward needs more than one answer string (a source molecule, several golden answers),
`Example.answer` holds them as JSON (`pack`/`unpack`), so the example stays a plain string row for every backend.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any, Sequence

from .base import Example, mean_scores
from .hub import TaskDataError, cut_splits, load_rows

__all__ = ["BenchmarkTask", "missing_extra", "pack", "unpack"]

log = logging.getLogger("llmzero.tasks")


def pack(**fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


def unpack(answer: str) -> dict[str, Any]:
    try:
        value = json.loads(answer)
    except ValueError:
        return {"answer": answer}
    return value if isinstance(value, dict) else {"answer": value}


def missing_extra(task: str, module: str, extra: str, purpose: str) -> TaskDataError:
    """The error for a task whose optional dependency is not installed: the exact command that installs it."""
    return TaskDataError(f"task={task} needs the Python package {module!r} ({purpose}), which is not installed. "
                         f"Install it with: pip install 'llmzero[{extra}]'")


class BenchmarkTask:
    """A hub benchmark cut into train/val/test with `seed`; subclasses define rows -> examples and the reward."""

    dataset_id = ""  # the hub id, a subclass's default for `dataset`
    columns: tuple[str, ...] = ()  # the columns to_example reads, named when a row lacks one

    def __init__(self, name: str, dataset: str | None = None, revision: str | None = None,
                 data_files: str | None = None, config_name: str | None = None, train_size: int = 5000,
                 val_size: int = 500, test_size: int = 500, subtasks: Sequence[str] | None = None, seed: int = 0,
                 test_split: str | None = None, **_: Any) -> None:
        self.name, self.dataset, self.revision = name, dataset or self.dataset_id, revision
        self.data_files, self.config_name = data_files, config_name
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed, self.test_split = seed, test_split
        self.subtasks = list(subtasks or [])  # known once the rows are read, when the config lists none
        self.note = ""
        self._splits: dict[str, list[Example]] | None = None

    # -- what a benchmark writes ------------------------------------------------------------------
    def to_example(self, row: dict[str, Any]) -> Example:
        raise NotImplementedError

    def reward(self, completion: str, example: Example) -> float:
        raise NotImplementedError

    def reference(self, example: Example) -> str:
        """A completion that earns reward 1 (the warm-start target of builtin:tiny)."""
        return example.answer

    def set_aside(self, row: dict[str, Any]) -> str | None:
        """Why a row cannot be used (it is left out of every split), or None to keep it."""
        return None

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        return mean_scores([self.reward(c, e) for c, e in zip(completions, examples)], examples)

    # -- shared -----------------------------------------------------------------------------------
    def splits(self) -> dict[str, list[Example]]:
        if self._splits is None:
            by_split = load_rows(self.name, self.dataset, self.revision, self.data_files, self.config_name)
            aside: Counter[str] = Counter()
            kept: dict[str, list[dict[str, Any]]] = {}
            for split, rows in by_split.items():
                kept[split] = []
                for row in rows[:1]:
                    self._check_columns(row)
                for row in rows:
                    reason = self.set_aside(row)
                    if reason is None:
                        kept[split].append(row)
                    else:
                        aside[reason] += 1
            if not any(kept.values()):
                raise TaskDataError(f"task={self.name}: {self._where()} has no rows this task can use"
                                    + "".join(f"; {n} set aside: {why}" for why, n in sorted(aside.items())))
            cut = cut_splits(self.name, kept, self.seed, caps=self.sizes, test_split=self.test_split)
            if not cut.splits["val"]:
                raise TaskDataError(f"task={self.name}: {self._where()} has {sum(map(len, kept.values()))} usable rows, "
                                    f"too few to hold out a validation split in the paper's proportions (at least "
                                    f"{-(-sum(self.sizes.values()) // self.sizes['val'])} rows)")
            self.note = cut.note + "".join(f"; {n} rows set aside: {why}" for why, n in sorted(aside.items()))
            log.debug("%s", self.note)  # the phase logs it once; the driver builds the task several times
            self._splits = {split: [self._example(r) for r in rows] for split, rows in cut.splits.items()}
            if not self.subtasks:
                self.subtasks = sorted({ex.subtask for split in self._splits.values() for ex in split})
        return self._splits

    def _where(self) -> str:
        return f"task.data_files={self.data_files}" if self.data_files else self.dataset

    def _schema_error(self, row: dict[str, Any], detail: str) -> TaskDataError:
        return TaskDataError(f"task={self.name}: a row of {self._where()} is not in the {self.dataset_id or self.name} "
                             f"schema{detail}; the columns read are {', '.join(self.columns)}, and the row has "
                             f"{', '.join(map(str, row))}")

    def _check_columns(self, row: dict[str, Any]) -> None:
        missing = [c for c in self.columns if c not in row]
        if missing:
            raise self._schema_error(row, f": it has no {', '.join(missing)} column")

    def _example(self, row: dict[str, Any]) -> Example:
        try:
            return self.to_example(row)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._schema_error(row, f" ({type(exc).__name__}: {exc})") from None

"""WildSci (paper §4.1, Appendix B.1): multiple-choice science questions built from Nature Communications papers.

Hub rows (`JustinTX/WildSci`, one split): `question`, `options` (a letter -> text mapping, letters up to J),
`answer` (the letter), `discipline` (9 of them), `nc_domain`, `nc_subdomain`, `paper_id`, `voting_type`. The
model answers with `\\boxed{<letter>}`; the reward is 1 when the letter read from the response's final part (after
any thinking) is the answer. Subscores per discipline; the aggregate `score` is the mean over all examples, the
paper's example-weighted aggregate.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from .answers import choice_letter
from .base import Example, mean_scores
from .hub import cut_splits, load_rows

LETTERS = "ABCDEFGHIJ"
INSTRUCTION = ("Answer the multiple-choice question. Think it through, then give the letter of the single correct "
               "option inside \\boxed{}, e.g. \\boxed{A}.")


def subtask_name(discipline: str) -> str:
    """A discipline as a metric-name part (`val/<subtask>`): lower case, words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", discipline.lower()).strip("_") or "other"


def format_prompt(question: str, options: dict[str, Any]) -> str:
    listed = "\n".join(f"{letter}. {str(options[letter]).strip()}" for letter in sorted(options, key=str.upper))
    return f"{INSTRUCTION}\n\nQuestion: {question.strip()}\n\nOptions:\n{listed}\n"


def to_example(row: dict[str, Any]) -> Example:
    options = row["options"]
    if not isinstance(options, dict) or not options:
        raise ValueError(f"a WildSci row's options must be a letter -> text mapping, got {options!r}")
    options = {str(k).strip().upper(): v for k, v in options.items() if v is not None}  # parquet fills absent letters
    return Example(prompt=format_prompt(str(row["question"]), options), answer=str(row["answer"]).strip().upper(),
                   subtask=subtask_name(str(row.get("discipline") or "other")))


class WildSciTask:
    def __init__(self, name: str = "wildsci", dataset: str = "JustinTX/WildSci", revision: str | None = None,
                 data_files: str | None = None, train_size: int = 5000, val_size: int = 500, test_size: int = 500,
                 subtasks: Sequence[str] | None = None, seed: int = 0, **_: Any):
        self.name, self.dataset, self.revision, self.data_files = name, dataset, revision, data_files
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed = seed
        self.subtasks = list(subtasks or [])  # known once the rows are read (the disciplines present)
        self.note = ""
        self._splits: dict[str, list[Example]] | None = None

    def splits(self) -> dict[str, list[Example]]:
        if self._splits is None:
            rows = load_rows(self.name, self.dataset, self.revision, self.data_files)
            cut = cut_splits(self.name, rows, self.seed, caps=self.sizes)
            self.note = cut.note
            self._splits = {split: [to_example(r) for r in split_rows] for split, split_rows in cut.splits.items()}
            if not self.subtasks:
                self.subtasks = sorted({ex.subtask for split in self._splits.values() for ex in split})
        return self._splits

    def reward(self, completion: str, example: Example) -> float:
        return 1.0 if choice_letter(completion, LETTERS) == example.answer else 0.0

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        return mean_scores([self.reward(c, e) for c, e in zip(completions, examples)], examples)

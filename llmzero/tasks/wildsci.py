"""WildSci (paper §4.1, Appendix B.1): multiple-choice science questions built from Nature Communications papers.

Hub rows (`JustinTX/WildSci`, one split): `question`, `options` (a letter -> text mapping, letters up to J),
`answer` (the letter), `discipline` (9 of them), `nc_domain`, `nc_subdomain`, `paper_id`, `voting_type`. The
model answers with `\\boxed{<letter>}`; the reward is 1 when the letter read from the response's final part (after
any thinking) is the answer. Subscores per discipline; the aggregate `score` is the mean over all examples, the
paper's example-weighted aggregate.
"""

from __future__ import annotations

import re
from typing import Any

from .answers import choice_letter
from .base import Example
from .benchmark import BenchmarkTask

# The instruction's own example answer: a response that only echoes it has not chosen A.
EXAMPLE = "e.g. \\boxed{A}"
LETTERS = "ABCDEFGHIJ"
INSTRUCTION = ("Answer the multiple-choice question. Think it through, then give the letter of the single correct "
               "option inside \\boxed{}, " + EXAMPLE + ".")


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


class WildSciTask(BenchmarkTask):
    dataset_id = "JustinTX/WildSci"
    columns = ("question", "options", "answer")

    def __init__(self, name: str = "wildsci", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)

    def to_example(self, row: dict[str, Any]) -> Example:
        return to_example(row)

    def reward(self, completion: str, example: Example) -> float:
        return 1.0 if choice_letter(completion, LETTERS, ignore=(INSTRUCTION, EXAMPLE)) == example.answer else 0.0

    def reference(self, example: Example) -> str:
        return f"\\boxed{{{example.answer}}}"

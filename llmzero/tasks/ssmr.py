"""SSMR-Bench (paper §4.1, Appendix B.1): music-theory multiple choice over scores written in ABC notation.

Hub rows (`Sylence/SSMR-Bench`): `class_name`, `question`, `abc_context` (the score; some rows hold literal `\\n`
sequences where line breaks belong), `correct_answer`, `incorrect_answer1..3`, `category`, `difficulty`. The data
lists the correct answer first, so each row's four options are shuffled with a generator seeded by the task seed and
the row's own text (the same row gets the same letters on every machine and in every split) and the correct letter is
recorded as the answer. The model answers `\\boxed{<letter>}`; the reward is 1 when the letter read after any thinking
is the recorded one. Subtasks by category: scale, beat, chord (the categories Chord, Chord-e and Chord-c) and
interval; the aggregate `score` is the mean of the subtasks' accuracies (each subtask counts the same, whatever its
size), as the paper reports it.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Sequence

from .answers import choice_letter
from .base import Example, mean_scores
from .benchmark import BenchmarkTask

# The instruction's own example answer: a response that only echoes it has not chosen A.
EXAMPLE = "e.g. \\boxed{A}"
LETTERS = "ABCD"
SUBTASKS = ("scale", "beat", "chord", "interval")
INSTRUCTION = ("Read the music score in ABC notation and answer the music-theory question. Choose one of the options "
               "A, B, C or D, think it through, and give the letter of the correct option inside \\boxed{}, "
               + EXAMPLE + ".")


def subtask_of(category: str) -> str:
    """The subtask a category belongs to: its name before any `-` suffix (Chord-e and Chord-c are chord), lower case."""
    base = re.split(r"[-_\s]", str(category).strip(), maxsplit=1)[0].lower()
    return base or "other"


def unescape_score(abc: str) -> str:
    """ABC text with literal `\\n` (and `\\t`) sequences turned into the line breaks (and tabs) they stand for."""
    return str(abc).replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\t", "\t")


def shuffled_options(row: dict[str, Any], seed: int) -> tuple[list[str], str]:
    """The row's four options in a per-row deterministic order, and the letter of the correct one."""
    options = [str(row["correct_answer"])] + [str(row[f"incorrect_answer{i}"]) for i in (1, 2, 3)]
    key = "\0".join([str(seed), str(row.get("question", "")), str(row.get("abc_context", "")), *options])
    rng = random.Random(hashlib.sha256(key.encode()).hexdigest())  # not hash(): Python salts it per process
    order = list(range(len(options)))
    rng.shuffle(order)
    return [options[i] for i in order], LETTERS[order.index(0)]


def format_prompt(question: str, abc: str, options: Sequence[str]) -> str:
    listed = "\n".join(f"{LETTERS[i]}. {text.strip()}" for i, text in enumerate(options))
    return f"{INSTRUCTION}\n\nScore:\n{unescape_score(abc).strip()}\n\nQuestion: {question.strip()}\n\nOptions:\n{listed}\n"


class SSMRTask(BenchmarkTask):
    dataset_id = "Sylence/SSMR-Bench"
    columns = ("question", "correct_answer", "incorrect_answer1", "incorrect_answer2", "incorrect_answer3")

    def __init__(self, name: str = "ssmr", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.subtasks = self.subtasks or list(SUBTASKS)

    def to_example(self, row: dict[str, Any]) -> Example:
        options, letter = shuffled_options(row, self.seed)
        return Example(prompt=format_prompt(str(row["question"]), str(row.get("abc_context") or ""), options),
                       answer=letter, subtask=subtask_of(str(row.get("category") or "")))

    def reward(self, completion: str, example: Example) -> float:
        return 1.0 if choice_letter(completion, LETTERS, ignore=(INSTRUCTION, EXAMPLE)) == example.answer else 0.0

    def reference(self, example: Example) -> str:
        return f"\\boxed{{{example.answer}}}"

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        scores = mean_scores([self.reward(c, e) for c, e in zip(completions, examples)], examples)
        return self.summarise({k: v for k, v in scores.items() if k != "score"}, {})

    def summarise(self, subscores: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
        """The mean over subtasks, not over examples."""
        return {"score": sum(subscores.values()) / len(subscores) if subscores else 0.0, **subscores}

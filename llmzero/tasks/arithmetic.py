"""Synthetic verifiable task: integer arithmetic with an exact-match reward.

Generated deterministically from a seed, so no download is needed and every machine sees the
same splits. Sub-tasks differ in difficulty, which exercises `val/<subtask>` scoring.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from .base import Example, mean_scores

# name -> operand sampler (difficulty grows down the list)
_GENERATORS: dict[str, Callable[[random.Random], tuple[int, str, int]]] = {
    "add_2digit": lambda r: (r.randint(10, 99), "+", r.randint(10, 99)),
    "add_3digit": lambda r: (r.randint(100, 999), "+", r.randint(100, 999)),
    "mul_1x2digit": lambda r: (r.randint(2, 9), "*", r.randint(10, 99)),
}
# distinct prompts each sampler can produce: splits larger than this cannot be disjoint
_CAPACITY = {"add_2digit": 90 * 90, "add_3digit": 900 * 900, "mul_1x2digit": 8 * 90}


def _answer(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a * b


def format_prompt(a: int, op: str, b: int) -> str:
    return f"{a}{op}{b}="


def extract_answer(completion: str) -> str:
    """The model's answer: the completion up to the first newline or space, stripped."""
    text = completion.strip()
    for sep in ("\n", " "):
        text = text.split(sep, 1)[0]
    return text


class ArithmeticTask:
    def __init__(self, name: str = "arithmetic", train_size: int = 512, val_size: int = 64, test_size: int = 64,
                 subtasks: Sequence[str] | None = None, seed: int = 0, **_: Any):
        self.name = name
        self.subtasks = list(subtasks or _GENERATORS)
        unknown = [s for s in self.subtasks if s not in _GENERATORS]
        if unknown:
            raise ValueError(f"task.subtasks={unknown} not known; allowed: {sorted(_GENERATORS)}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed = seed
        total = sum(self.sizes.values())
        for i, sub in enumerate(self.subtasks):
            # round-robin share of every split for this subtask
            need = sum(n // len(self.subtasks) + (1 if i < n % len(self.subtasks) else 0) for n in self.sizes.values())
            if need > _CAPACITY[sub]:
                raise ValueError(
                    f"task sizes train={train_size}, val={val_size}, test={test_size} ask {need} distinct "
                    f"'{sub}' problems but only {_CAPACITY[sub]} exist (total {total}); use smaller splits or other subtasks"
                )
        self._splits: dict[str, list[Example]] | None = None

    def splits(self) -> dict[str, list[Example]]:
        """Disjoint splits; sub-tasks interleaved round-robin so every split covers all of them."""
        if self._splits is None:
            rng = random.Random(f"arithmetic-{self.seed}")
            seen: set[str] = set()
            out: dict[str, list[Example]] = {}
            for split in ("test", "val", "train"):  # held-out splits first: they never lose examples
                examples = []
                i = 0
                while len(examples) < self.sizes[split]:
                    sub = self.subtasks[i % len(self.subtasks)]
                    i += 1
                    a, op, b = _GENERATORS[sub](rng)
                    prompt = format_prompt(a, op, b)
                    if prompt in seen:
                        continue
                    seen.add(prompt)
                    examples.append(Example(prompt=prompt, answer=str(_answer(a, op, b)), subtask=sub))
                out[split] = examples
            self._splits = out
        return self._splits

    def reward(self, completion: str, example: Example) -> float:
        return 1.0 if extract_answer(completion) == example.answer else 0.0

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        return mean_scores([self.reward(c, e) for c, e in zip(completions, examples)], examples)

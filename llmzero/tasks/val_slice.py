"""The fixed slice of the validation split a phase scores in flight: chosen once with the seed, stratified by subtask.

Every evaluation of every phase of a search scores the same prompts, so curves stay comparable across phases, and
each subtask keeps its share of the split (largest remainders; every subtask at least one prompt when the slice
has room), so the slice's mean estimates the whole split's.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def stratified_slice(examples: Sequence[T], size: int, seed: int,
                     key: Callable[[T], object] = lambda ex: getattr(ex, "subtask", "all")) -> list[T]:
    """`size` of `examples` (all of them when size is 0 or not smaller), in their original order."""
    if size <= 0 or size >= len(examples):
        return list(examples)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[str(key(ex))].append(i)
    names = sorted(groups)
    exact = {g: size * len(groups[g]) / len(examples) for g in names}
    take = {g: int(exact[g]) for g in names}
    if size >= len(names):
        for g in names:
            take[g] = max(1, take[g])
    # the prompts still to place go to the largest remainders; a subtask raised to one gives them back first
    while sum(take.values()) > size:
        g = max((g for g in names if take[g] > 1), key=lambda g: take[g] - exact[g])
        take[g] -= 1
    for g in sorted(names, key=lambda g: exact[g] - take[g], reverse=True)[:size - sum(take.values())]:
        take[g] += 1
    rng = random.Random(f"val-slice-{seed}")
    chosen = sorted(i for g in names for i in rng.sample(groups[g], min(take[g], len(groups[g]))))
    return [examples[i] for i in chosen]

"""Phase length in optimizer steps: the one place an epoch budget becomes a step count (§3.4 stage 4)."""

from __future__ import annotations

import math


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Optimizer steps in one pass over `train_size` prompts at `batch_size` prompts per step (a partial batch counts)."""
    return max(1, math.ceil(int(train_size) / max(1, int(batch_size))))


def steps_for_epochs(epochs: float, steps_per_epoch: int) -> int:
    """An epoch budget as optimizer steps, rounded to the nearest step and at least one."""
    return max(1, round(float(epochs) * steps_per_epoch))

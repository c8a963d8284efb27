"""What a TRL phase scores and saves at each optimizer step, so evaluation does not eat the step.

In flight, val/score is taken on a fixed slice of the val split (trainer.val_slice prompts, tasks/val_slice.py):
the curve the agents and the stopper read. A checkpoint is scored on the whole split only when its slice score
says it may become the phase's best: above the best whole-split score so far less the slice's sampling error,
sqrt(p(1-p)/n · (1 - n/N)) for a mean of n of the N prompts (a score in [0, 1] has at most that variance). The
whole-split scores pick the best checkpoint (MetricSeries.best_val), so the search's best is still chosen on the
whole split; the final test score is the search's own full test evaluation (search/final_eval.py).

Saves: a step whose whole-split score is a new best for the phase (so the best step always has its adapter), the
last step (the natural resume point), a stop, and every save_every steps for a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EvalPlan:
    eval_every: int
    save_every: int
    slice_size: int  # prompts scored in flight; equal to full_size when the whole split is scored
    full_size: int
    best_full: float | None = None  # the phase's best whole-split score so far (a resumed run starts with its own)

    @property
    def sliced(self) -> bool:
        return 0 < self.slice_size < self.full_size

    def evaluates(self, step: int, final: bool) -> bool:
        return final or step % max(1, self.eval_every) == 0

    def slack(self, score: float) -> float:
        """The sampling error of a slice mean about the whole split's."""
        if not self.sliced:
            return 0.0
        p = min(1.0, max(0.0, score))
        return math.sqrt(p * (1 - p) / self.slice_size * (1 - self.slice_size / self.full_size))

    def may_be_best(self, slice_score: float) -> bool:
        """Worth scoring on the whole split: it may beat the best so far (a tie cannot: the earliest step wins)."""
        return self.best_full is None or slice_score + self.slack(slice_score) > self.best_full

    def take_full(self, score: float) -> bool:
        """Record a whole-split score; True when it is a new best for the phase."""
        if not math.isfinite(score) or (self.best_full is not None and score <= self.best_full):
            return False
        self.best_full = score
        return True

    def saves(self, step: int, final: bool, new_best: bool) -> bool:
        return new_best or final or step % max(1, self.save_every) == 0

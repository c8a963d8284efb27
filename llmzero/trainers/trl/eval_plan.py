"""What a TRL phase scores and saves at each optimizer step, so evaluation does not eat the step.

In flight, val/score is taken on a fixed slice of the val split (trainer.val_slice prompts, tasks/val_slice.py):
the curve the agents and the stopper read. A checkpoint is scored on the whole split only when its slice score
says it may become the phase's best: above every slice score the phase had before. The slice differs from the
whole split by an offset of its own (which prompts it holds) that is the same at every evaluation, so slice
against slice compares checkpoints without it; a checkpoint that does not beat an earlier one on the same prompts
is not expected to beat it on all of them (a tie neither: the earliest step wins ties). The whole-split scores pick
the best checkpoint (MetricSeries.best_val), so the search's best is still chosen on the whole split; the final
test score is the search's own full test evaluation (search/final_eval.py).

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
    best_slice: float | None = None  # ... and its best slice score

    @property
    def sliced(self) -> bool:
        return 0 < self.slice_size < self.full_size

    def evaluates(self, step: int, final: bool) -> bool:
        return final or step % max(1, self.eval_every) == 0

    def may_be_best(self, slice_score: float) -> bool:
        """Worth scoring on the whole split: above every slice score before it (the first always is); the score is
        then the phase's record."""
        worth = self.best_slice is None or slice_score > self.best_slice
        if math.isfinite(slice_score) and worth:
            self.best_slice = slice_score
        return worth

    def take_full(self, score: float) -> bool:
        """Record a whole-split score; True when it is a new best for the phase."""
        if not math.isfinite(score) or (self.best_full is not None and score <= self.best_full):
            return False
        self.best_full = score
        return True

    def saves(self, step: int, final: bool, new_best: bool) -> bool:
        return new_best or final or step % max(1, self.save_every) == 0

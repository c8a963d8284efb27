"""What the early stopper weighs (§3.5), as pure functions of validation curves, and the heuristic's rule.

A curve is a phase's validation scores as (step, score) pairs. The stopper is shown, for the running phase:
its best so far against the incumbent's best and against what the incumbent's own strategy had reached at the
same global step; its recent trend; how noisy one evaluation is on this task; how much budget is left; and how
much phases let run in this tree still rose after the same share of their steps (late risers).

The rule (`judge`) measures gaps in units of the evaluation noise σ. σ comes from the curves themselves: for
scores evaluated at equal spacing along a locally straight curve, the second difference v[i+1] - 2 v[i] + v[i-1]
has variance 6σ², so σ = 1.4826 · median|d2| / √6 (the median keeps a real jump out of the estimate). A phase is
stopped only when all of these hold, at `units` (2 by default, one-sided ≈ 98% were the noise normal), every
score being of the in-flight curve (the same prompts for every phase, so like is compared with like):
  - its best is below the incumbent's best (both are maxima of as noisy evaluations: like with like), or, for a
    phase ahead, it has fallen off its own peak: its level, plus its slope at face value over the steps left,
    plus the late rise, stays more than units standard errors of its level below its own best (the best
    checkpoint is kept; only steps that could not beat it are saved);
  - its reach stays below the incumbent's best by more than units standard errors of its level. The level is a
    line fitted on its last 5 evaluations (standard error σ/√5), not its best: the best of a flat phase creeps up
    by the luck of each new evaluation, which no further step makes real. The reach adds to the level what its
    trend is worth over the steps left (the slope less one standard error) and the largest rise any comparable
    phase of this tree that ran to the end made after the same share of its steps beyond what its own trend then
    foretold (the late risers). A phase keeping pace with the incumbent's strategy (its best within units·σ of
    what the incumbent had reached at the same global step, while the incumbent was still rising) may instead
    reach what the incumbent had by this phase's last global step, plus its lead: a slow starter on the
    incumbent's own schedule is not dominated.
So a flat phase tied with the incumbent is stopped (more steps would only re-draw the noise; its checkpoints and
best score are kept), while a rising one, or one in a tree where flat phases have risen late, runs on.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

Curve = Sequence[tuple[int, float]]

NOISE_MIN_DIFFS = 4  # second differences needed before σ is read from the curves instead of the prior
TREND_WINDOW = 5  # evaluations the recent trend is fitted on


def finite(curve: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in curve if math.isfinite(v)]


def eval_noise(curves: Iterable[Curve]) -> tuple[float | None, int]:
    """σ of one evaluation, pooled over `curves` from their second differences; None with too few of them."""
    diffs = []
    for curve in curves:
        vals = [v for _, v in finite(curve)]
        diffs += [abs(vals[i + 1] - 2 * vals[i] + vals[i - 1]) for i in range(1, len(vals) - 1)]
    if len(diffs) < NOISE_MIN_DIFFS:
        return None, len(diffs)
    return 1.4826 * statistics.median(diffs) / math.sqrt(6.0), len(diffs)


def trend(curve: Curve, sigma: float, window: int = TREND_WINDOW) -> tuple[float, float, float]:
    """The level now (the fitted line at the last evaluation), the slope per step and its standard error given σ,
    fitted by least squares on the last `window` evaluations."""
    pts = finite(curve)[-window:]
    if not pts:
        return math.nan, 0.0, math.inf
    xm = statistics.fmean(s for s, _ in pts)
    ym = statistics.fmean(v for _, v in pts)
    sxx = sum((s - xm) ** 2 for s, _ in pts)
    if sxx <= 0:
        return ym, 0.0, math.inf
    slope = sum((s - xm) * (v - ym) for s, v in pts) / sxx
    return ym + slope * (pts[-1][0] - xm), slope, sigma / math.sqrt(sxx)


def trend_gain(slope: float, se: float, steps_left: int) -> float:
    """What a trend is worth over the steps left: the slope less one standard error, never negative."""
    return max(0.0, slope - se) * steps_left if math.isfinite(se) else 0.0


def best_until(curve: Curve, step: float) -> float | None:
    """The curve's best score at or before `step`, None when it has none yet."""
    vals = [v for s, v in finite(curve) if s <= step]
    return max(vals) if vals else None


def late_rise(curve: Curve, share: float, total: int, sigma: float, window: int = TREND_WINDOW) -> float | None:
    """How far a finished phase rose after `share` of its `total` steps beyond what its trend then foretold.

    The rise is measured on running means of `window` evaluations, so the luck of one evaluation does not
    count as a rise; None when the phase had fewer than two evaluations by then or none after."""
    pts = finite(curve)
    cut = share * total
    before, after = [p for p in pts if p[0] <= cut], [p for p in pts if p[0] > cut]
    if len(before) < 2 or not after:
        return None
    level, slope, se = trend(before, sigma, window)
    k = min(window, len(after))
    means = [statistics.fmean(v for _, v in after[i:i + k]) for i in range(len(after) - k + 1)]
    return max(0.0, max(means) - level - trend_gain(slope, se, int(total - cut)))


@dataclass
class StopEvidence:
    """Everything the stopper decides on at one check; kept with the decision in tree.json."""

    step: int
    global_step: int
    steps_left: int
    iterations_left: int
    evals: int
    best: float
    best_step: int
    last: float
    level: float  # where the phase stands now: its recent evaluations' fitted line at the last one
    level_evals: int  # how many evaluations that line is fitted on
    units: float  # the stop margin in σ (search.early_stop.noise_units)
    noise: float
    noise_from: str
    incumbent: int | None = None
    incumbent_best: float | None = None  # on the in-flight curve, the same prompts this phase is scored on
    incumbent_then: float | None = None  # the incumbent strategy's best at or before this global step
    incumbent_at_end: float | None = None  # ... at or before the global step this phase ends at
    slope: float = 0.0
    slope_se: float = 0.0
    trend_gain: float = 0.0  # (slope - its standard error) × steps left, never negative
    late_rise: float = 0.0  # the largest rise a comparable phase made after this share of its steps, beyond its trend
    late_risers: int = 0  # comparable phases whose late rise exceeded the margin
    comparable: int = 0  # finished phases, started like this one and run to the end, the history is read from

    @property
    def gap(self) -> float | None:
        return None if self.incumbent_best is None else self.incumbent_best - self.best

    @property
    def gap_then(self) -> float | None:
        return None if self.incumbent_then is None else self.incumbent_then - self.best

    @property
    def level_margin(self) -> float:
        """units × the standard error of the level (σ/√k for k evaluations)."""
        return self.units * self.noise / math.sqrt(max(1, self.level_evals))

    @property
    def keeps_pace(self) -> bool:
        """Within units·σ of where the incumbent's strategy stood at this global step, while it was still rising."""
        return (self.incumbent_then is not None and self.incumbent_best is not None
                and self.incumbent_then < self.incumbent_best
                and self.best + self.units * self.noise >= self.incumbent_then)

    @property
    def pace_reach(self) -> float | None:
        """Where this phase ends if it goes on at the incumbent's own pace: the incumbent strategy's score at this
        phase's last global step, plus the lead (or less the lag) it has now."""
        if not self.keeps_pace or self.incumbent_at_end is None or self.incumbent_then is None:
            return None
        return self.incumbent_at_end + (self.best - self.incumbent_then)

    @property
    def back_to_peak(self) -> float:
        """For a phase ahead of the incumbent: where its level, its slope taken at face value (a leader gets the
        benefit of the doubt) and the late rise can take it, to be set against its own best."""
        return self.level + max(0.0, self.slope) * self.steps_left + self.late_rise

    @property
    def reach(self) -> float:
        """Where this phase can plausibly end: its level plus its trend plus the largest late rise seen, or its
        pace's end when it keeps pace with the incumbent's strategy and that is higher."""
        own = self.level + self.trend_gain + self.late_rise
        return max(own, self.pace_reach) if self.pace_reach is not None else own

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(gap=self.gap, gap_then=self.gap_then, keeps_pace=self.keeps_pace, pace_reach=self.pace_reach,
                   reach=self.reach, back_to_peak=self.back_to_peak, level_margin=self.level_margin)
        return out

    def text(self) -> str:
        """The evidence in words, for the LLM stopper's prompt and the report."""
        f = _fmt
        lines = [f"- evaluations so far: {self.evals}; best {f(self.best)} at step {self.best_step}, last "
                 f"{f(self.last)}; level now {f(self.level)} (a line fitted on the last {self.level_evals})"]
        if self.incumbent is not None:
            lines.append(f"- incumbent node {self.incumbent}: best {f(self.incumbent_best)}; gap to this phase's "
                         f"best {f(self.gap)} = {_units(self.gap, self.noise)}σ")
            lines.append(f"- the incumbent's strategy at the same global step ({self.global_step}): " + (
                f"{f(self.incumbent_then)}, gap {f(self.gap_then)} = {_units(self.gap_then, self.noise)}σ; "
                f"by this phase's last step ({self.global_step + self.steps_left}) it stood at "
                f"{f(self.incumbent_at_end)}" + (f"; at that pace this phase would end near {f(self.pace_reach)}"
                                                   if self.pace_reach is not None else "")
                if self.incumbent_then is not None else "had not been evaluated yet"))
        lines.append(f"- noise of one evaluation σ = {f(self.noise)} ({self.noise_from})")
        lines.append(f"- recent trend {f(self.slope)} ± {f(self.slope_se)} per step; over the {self.steps_left} steps "
                     f"left it is worth +{f(self.trend_gain)} (slope less one standard error)")
        lines.append(f"- late risers: {self.late_risers} of {self.comparable} comparable phase(s) that ran to the end "
                     f"rose beyond their trend after the same share of their steps by more than the margin; "
                     f"the largest such rise: +{f(self.late_rise)}")
        if self.gap is not None and self.gap <= 0:
            lines.append(f"- ahead of the incumbent; level + slope at face value + late rise: {f(self.back_to_peak)} "
                         f"against its own best {f(self.best)}")
        lines.append(f"- reach (level + trend + late rise, or the pace's end): {f(self.reach)}, uncertain by ±{f(self.level_margin)} "
                     f"({self.units:g} standard errors of the level); search iterations left: {self.iterations_left}")
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _units(gap: float | None, noise: float) -> str:
    return "n/a" if gap is None or noise <= 0 else f"{gap / noise:.1f}"


def gather(*, curve: Curve, step: int, global_offset: int, max_steps: int, iterations_left: int,
           incumbent: int | None, incumbent_best: float | None, incumbent_path: Curve | None,
           noise_curves: Iterable[Curve], comparable: Iterable[tuple[Curve, int]],
           noise_prior: float, noise_floor: float, units: float) -> StopEvidence | None:
    """The evidence at one check, or None when the running phase has no finite validation score yet.

    incumbent_path is the incumbent strategy's curve on global steps; noise_curves are every curve σ is pooled
    over (the running one included); comparable holds (curve, max_steps) of finished phases that ran to their end
    and started the way this one did (from scratch, or from a checkpoint)."""
    pts = finite(curve)
    if not pts:
        return None
    best_step, best = max(pts, key=lambda p: (p[1], -p[0]))
    sigma, n = eval_noise(noise_curves)
    if sigma is None:
        noise, source = noise_prior, f"search.early_stop.noise_prior: only {n} second difference(s) so far"
    else:
        noise = max(sigma, noise_floor)
        source = f"from {n} second differences of this tree's curves" + (
            ", raised to search.early_stop.noise_floor" if sigma < noise_floor else "")
    steps_left = max(0, max_steps - step)
    level, slope, se = trend(pts, noise)
    share = step / max_steps if max_steps else 1.0
    margin = units * noise
    rises = [r for c, total in comparable if (r := late_rise(c, share, total, noise)) is not None]
    return StopEvidence(
        step=step, global_step=global_offset + step, steps_left=steps_left, iterations_left=iterations_left,
        evals=len(pts), best=best, best_step=best_step, last=pts[-1][1], level=level,
        level_evals=min(TREND_WINDOW, len(pts)), units=units, noise=noise, noise_from=source, incumbent=incumbent,
        incumbent_best=incumbent_best,
        incumbent_then=best_until(incumbent_path, global_offset + step) if incumbent_path else None,
        incumbent_at_end=best_until(incumbent_path, global_offset + max(step, max_steps)) if incumbent_path else None,
        slope=slope, slope_se=se if math.isfinite(se) else 0.0, trend_gain=trend_gain(slope, se, steps_left),
        late_rise=max(rises, default=0.0), late_risers=sum(r > margin for r in rises), comparable=len(rises))


def judge(ev: StopEvidence) -> tuple[bool, str]:
    """The heuristic stopper's CONTINUE/STOP on the evidence (the rule in the module docstring) and why."""
    if ev.incumbent_best is None or ev.gap is None:
        return False, "CONTINUE: no incumbent with a validation score to compare against."
    numbers = (f"best {ev.best:.4g}, level {ev.level:.4g} vs incumbent node {ev.incumbent}'s {ev.incumbent_best:.4g} "
               f"(gap {ev.gap:.4g} = {_units(ev.gap, ev.noise)}σ, σ={ev.noise:.3g})")
    if ev.gap <= 0:
        if ev.back_to_peak + ev.level_margin >= ev.best:
            return False, f"CONTINUE: ahead of the incumbent: {numbers}."
        return True, (f"STOP: ahead of the incumbent but past its own peak: {numbers}; level + any upward slope + late "
                      f"rise reach {ev.back_to_peak:.4g}, more than {ev.level_margin:.3g} below its best; the best "
                      f"checkpoint (step {ev.best_step}) is kept.")
    if ev.reach + ev.level_margin >= ev.incumbent_best:
        own = ev.level + ev.trend_gain + ev.late_rise
        why = ("keeping pace with the incumbent's own strategy" if ev.pace_reach is not None and ev.pace_reach > own
               else "late risers in this tree" if ev.late_rise > ev.trend_gain else "its trend" if ev.trend_gain > 0
               else "its level, within noise,")
        return False, (f"CONTINUE: {why} could still reach the incumbent (reach {ev.reach:.4g} ± "
                       f"{ev.level_margin:.3g}): {numbers}.")
    pace = f", or {ev.pace_reach:.4g} at the incumbent's pace" if ev.pace_reach is not None else ""
    return True, (f"STOP: dominated: {numbers}; reach {ev.reach:.4g} (level + trend +{ev.trend_gain:.3g} + late rise "
                  f"+{ev.late_rise:.3g}{pace}) stays more than {ev.level_margin:.3g} ({ev.units:g} standard errors of the "
                  f"level) below the incumbent.")

"""Rule-based diagnosis of a phase's training dynamics (paper §3.4, §4.3).

The patterns are the ones the paper's best strategies react to (§4.3.1–4.3.2):

    kl_spike          kl has spikes, or its last-window mean is many times its start and the rise came
                      suddenly (a steady ramp from 0 is normal GRPO behaviour, not a spike), and val/score
                      did not gain alongside it (the ChemCoT phase-3 reading, §4.3.1)
    plateau           val/score flat over the last evaluations with weak updates
                      (low grad_norm and/or near-zero PPO clip_ratio)
    entropy_collapse  entropy fell to a small fraction of its start
    truncation        a large share of responses is cut at response_length
    zero_variance     many GRPO groups whose rollouts all got the same reward

Every statistic comes from llmzero.metrics.summary, so the numbers quoted in the
observations are the ones an LLM agent would see in its prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..metrics import names
from ..metrics.store import MetricSeries
from ..metrics.summary import CurveSummary, summarise, summarise_curve
from .base import Observation

KL_SPIKE = "kl_spike"
PLATEAU = "plateau"
ENTROPY_COLLAPSE = "entropy_collapse"
TRUNCATION = "truncation"
ZERO_VARIANCE = "zero_variance"
# Priority when two patterns pull one hyperparameter in opposite directions: stabilise first.
PRIORITY = (KL_SPIKE, ENTROPY_COLLAPSE, TRUNCATION, ZERO_VARIANCE, PLATEAU)
LABELS = {
    KL_SPIKE: "KL spike",
    PLATEAU: "validation plateau",
    ENTROPY_COLLAPSE: "entropy collapse",
    TRUNCATION: "truncated responses",
    ZERO_VARIANCE: "zero-variance reward groups",
}


@dataclass(frozen=True)
class Thresholds:
    kl_floor: float = 0.005  # a start below this counts as this (kl starts near 0)
    kl_rise: float = 4.0  # last-window mean / start at or above this is a spike
    kl_spike_min: float = 0.02  # summary spikes smaller than this are noise
    kl_severe: float = 10.0  # rise at or above this is severe (stronger KL response)
    kl_sudden: float = 0.5  # share of the rise within 20% of the steps (sudden_share): below it, a steady ramp
    plateau_window: int = 3  # last evaluations that must be flat
    plateau_abs_tol: float = 0.01  # flat: max-min over the window within this ...
    plateau_rel_tol: float = 0.02  # ... or this fraction of the window mean, whichever is larger
    grad_norm_low: float = 0.01
    clip_ratio_zero: float = 1e-3
    entropy_collapse_frac: float = 0.3  # last-window mean / start below this
    truncation_high: float = 0.1  # response_length/clip_ratio last-window mean above this
    truncation_severe: float = 0.3
    zero_std_high: float = 0.3  # reward/zero_std_frac last-window mean above this
    max_auto_rollouts: int = 16  # the heuristic doubles rollouts up to this; beyond, cost outgrows the signal


@dataclass
class Finding:
    pattern: str
    text: str  # one clause with the numbers, used in the diagnosis sentence
    observations: list[Observation] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Diagnosis:
    summaries: dict[str, CurveSummary]
    findings: dict[str, Finding] = field(default_factory=dict)  # in PRIORITY order
    val: CurveSummary | None = None
    val_window: CurveSummary | None = None  # the last `plateau_window` evaluations
    val_flat: bool = False
    improving: bool = False
    observations: list[Observation] = field(default_factory=list)  # general ones (val curve)

    def has(self, pattern: str) -> bool:
        return pattern in self.findings

    def all_observations(self) -> list[Observation]:
        out = list(self.observations)
        for f in self.findings.values():
            out.extend(f.observations)
        return out

    def sentence(self) -> str:
        if not self.findings:
            if self.val is None:
                return "No validation signal and no pathological dynamics detected."
            state = "still improving" if self.improving else "flat with active updates (converging)"
            return (f"Healthy run: val/score {state} ({self.val.start:.4g} -> {self.val.end:.4g}, "
                    f"best {self.val.max:.4g} at step {self.val.argmax_step}); no KL, entropy or truncation problems.")
        labels = [LABELS[p] for p in self.findings]
        head = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
        details = "; ".join(f.text for f in self.findings.values())
        return f"Diagnosed {head}: {details}."


def _obs(s: CurveSummary, claim: str) -> Observation:
    return Observation(metric=s.metric, claim=claim, start_step=s.first_step, end_step=s.last_step)


def sudden_share(points: list[tuple[int, float]], window: float = 0.2, smooth: float = 0.15) -> float:
    """Largest rise within a short window (20% of the steps) as a share of the curve's whole rise.

    KL in GRPO grows steadily from 0 as the policy leaves the base model; what the paper calls a
    spike is growth concentrated in a few steps (a jump, or acceleration). A steady ramp scores
    about `window`, a jump close to 1. The curve is first smoothed with a centred rolling mean
    over 15% of the steps each side, so per-step noise of small GRPO batches is not a jump
    (calibrated on real tiny-model runs: ramps 0.32-0.47, jumps and blow-ups 0.54-0.92).
    """
    vals = [v for _, v in points if math.isfinite(v)]
    n = len(vals)
    if n < 4:
        return 1.0
    k = max(1, round(n * smooth))
    smoothed = [sum(vals[max(0, i - k):i + k + 1]) / len(vals[max(0, i - k):i + k + 1]) for i in range(n)]
    total = max(smoothed) - smoothed[0]
    if total <= 0:
        return 0.0
    w = max(1, round(n * window))
    return max(smoothed[i + w] - smoothed[i] for i in range(n - w)) / total


def _kl(s: CurveSummary, points: list[tuple[int, float]], th: Thresholds) -> Finding | None:
    ref = max(abs(s.start), th.kl_floor)
    rise = s.last_mean / ref
    spikes = [(st, v) for st, v in s.spikes if v >= th.kl_spike_min]
    peak = max(s.max / ref, rise)
    if not spikes and (rise < th.kl_rise or sudden_share(points) < th.kl_sudden):
        return None
    parts = [f"kl went from {s.start:.4g} at step {s.first_step} to a last-window mean of {s.last_mean:.4g} "
             f"by step {s.last_step} ({rise:.1f}x its start, floor {th.kl_floor:g})"]
    if spikes:
        parts.append("spikes " + ", ".join(f"{v:.4g}@{st}" for st, v in spikes[:3]))
    claim = "; ".join(parts) + f"; max {s.max:.4g} at step {s.argmax_step}"
    return Finding(KL_SPIKE, f"kl rose {peak:.1f}x over its start (max {s.max:.4g} at step {s.argmax_step})",
                   [_obs(s, claim)], {"rise": rise, "peak_ratio": peak, "severe": peak >= th.kl_severe})


def val_gained(diag: Diagnosis, th: Thresholds) -> bool:
    """val/score rose over the phase by more than the flatness tolerance and still holds its best.

    §4.3.1 acts on "a 16x KL loss spike ... without validation improvement". A fresh adapter's KL
    climbs from 0 while the policy learns, and on the embedded task that climb is as sudden as
    a blow-up (tree runs of 2026-12-05: 0.005 -> 0.1 in 20 steps while val went 0.54 -> 0.63);
    read as a spike it halved a learning rate that was working. A rise that comes with a held
    gain is the policy learning; one that comes with flat or falling val is the warning sign.
    """
    v = diag.val
    if v is None or v.n < 2:
        return False
    tol = max(th.plateau_abs_tol, th.plateau_rel_tol * abs(v.max))
    return v.max - v.start > tol and v.max - max(v.end, v.last_mean) <= tol


def _plateau(diag: Diagnosis, th: Thresholds) -> Finding | None:
    if not diag.val_flat:
        return None
    sums = diag.summaries
    gn, cr = sums.get(names.GRAD_NORM), sums.get(names.CLIP_RATIO)
    low_gn = gn is not None and gn.last_mean < th.grad_norm_low
    zero_cr = cr is not None and cr.last_mean < th.clip_ratio_zero
    if not (low_gn or zero_cr or (gn is None and cr is None)):
        return None  # flat but updates are still strong: converging, not stuck
    v, win = diag.val, diag.val_window
    assert v is not None and win is not None
    obs = [_obs(win, f"val/score flat over the last {win.n} evaluations (steps {win.first_step}-{win.last_step}): "
                     f"{win.min:.4g}-{win.max:.4g}, range {win.max - win.min:.3g}; best {v.max:.4g} at step {v.argmax_step}")]
    weak = []
    if low_gn:
        obs.append(_obs(gn, f"grad_norm last-window mean {gn.last_mean:.3g} < {th.grad_norm_low:g} (start {gn.start:.3g})"))
        weak.append(f"grad_norm {gn.last_mean:.3g}")
    if zero_cr:
        obs.append(_obs(cr, f"PPO clip_ratio last-window mean {cr.last_mean:.3g} < {th.clip_ratio_zero:g}: updates almost never clipped"))
        weak.append(f"clip_ratio {cr.last_mean:.3g}")
    text = f"val/score flat at {win.min:.4g}-{win.max:.4g} over the last {win.n} evaluations"
    if weak:
        text += " with weak updates (" + ", ".join(weak) + ")"
    return Finding(PLATEAU, text, obs, {"low_grad_norm": low_gn, "zero_clip": zero_cr})


def _entropy(s: CurveSummary, th: Thresholds) -> Finding | None:
    if s.start <= 0:
        return None
    frac = s.last_mean / s.start
    if frac >= th.entropy_collapse_frac:
        return None
    claim = (f"entropy fell from {s.start:.4g} at step {s.first_step} to a last-window mean of {s.last_mean:.4g} "
             f"by step {s.last_step} ({frac:.0%} of its start, threshold {th.entropy_collapse_frac:.0%})")
    return Finding(ENTROPY_COLLAPSE, f"entropy at {frac:.0%} of its start ({s.start:.3g} -> {s.last_mean:.3g})",
                   [_obs(s, claim)], {"frac": frac})


def _truncation(s: CurveSummary, length: CurveSummary | None, th: Thresholds) -> Finding | None:
    if s.last_mean <= th.truncation_high:
        return None
    claim = (f"{s.last_mean:.1%} of responses cut at response_length over the last window "
             f"(threshold {th.truncation_high:.0%}; start {s.start:.1%}, max {s.max:.1%})")
    obs = [_obs(s, claim)]
    if length is not None:
        obs.append(_obs(length, f"mean response length {length.start:.4g} -> {length.end:.4g} tokens (max {length.max:.4g})"))
    return Finding(TRUNCATION, f"{s.last_mean:.0%} of responses truncated", obs,
                   {"frac": s.last_mean, "severe": s.last_mean > th.truncation_severe})


def _zero_var(s: CurveSummary, th: Thresholds) -> Finding | None:
    if s.last_mean <= th.zero_std_high:
        return None
    claim = (f"{s.last_mean:.0%} of GRPO groups had zero reward variance over the last window "
             f"(threshold {th.zero_std_high:.0%}; start {s.start:.0%})")
    return Finding(ZERO_VARIANCE, f"{s.last_mean:.0%} of groups with zero reward variance", [_obs(s, claim)],
                   {"frac": s.last_mean})


def diagnose(metrics: MetricSeries, th: Thresholds = Thresholds()) -> Diagnosis:
    """Summarise the phase's curves and detect every pattern that fires (several may)."""
    sums = summarise(metrics)
    diag = Diagnosis(summaries=sums, val=sums.get(names.VAL_SCORE))
    v = diag.val
    if v is not None:
        pts = [(s, x) for s, x in metrics.series(names.VAL_SCORE) if math.isfinite(x)]
        diag.observations.append(_obs(v, f"val/score {v.start:.4g} at step {v.first_step} -> {v.end:.4g} at step "
                                         f"{v.last_step}, best {v.max:.4g} at step {v.argmax_step} ({v.n} evaluations, trend {v.trend})"))
        if len(pts) >= th.plateau_window:
            win = summarise_curve(names.VAL_SCORE, pts[-th.plateau_window:])
            assert win is not None
            diag.val_window = win
            tol = max(th.plateau_abs_tol, th.plateau_rel_tol * abs(win.last_mean))
            diag.val_flat = (win.max - win.min) <= tol
        diag.improving = v.n >= 2 and not diag.val_flat and (v.last_slope > 0 or v.argmax_step == v.last_step)
    kl = _kl(sums[names.KL], metrics.series(names.KL), th) if names.KL in sums else None
    if kl is not None and val_gained(diag, th):
        assert v is not None
        note = (f"; val/score rose alongside it ({v.start:.4g} -> best {v.max:.4g}, held to the end), so this "
                "reads as the policy learning, which §4.3.1 does not act on")
        diag.observations.extend(replace(o, claim=o.claim + note) for o in kl.observations)
        kl = None
    found: dict[str, Finding | None] = {
        KL_SPIKE: kl,
        ENTROPY_COLLAPSE: _entropy(sums[names.ENTROPY], th) if names.ENTROPY in sums else None,
        TRUNCATION: (_truncation(sums[names.RESPONSE_CLIP_RATIO], sums.get(names.RESPONSE_LENGTH), th)
                     if names.RESPONSE_CLIP_RATIO in sums else None),
        ZERO_VARIANCE: _zero_var(sums[names.ZERO_STD_FRAC], th) if names.ZERO_STD_FRAC in sums else None,
        PLATEAU: _plateau(diag, th) if v is not None else None,
    }
    diag.findings = {p: found[p] for p in PRIORITY if found.get(p) is not None}  # type: ignore[misc]
    return diag


def non_finite(metrics: MetricSeries, keys: tuple[str, ...] | None = None) -> list[tuple[str, int, float]]:
    """(metric, step, value) of every NaN/inf value logged, in step order."""
    out = []
    for r in metrics.records:
        for k, val in r.items():
            if keys is not None and k not in keys:
                continue
            if k in (names.STEP, names.GLOBAL_STEP) or isinstance(val, bool) or not isinstance(val, (int, float)):
                continue
            if not math.isfinite(val):
                out.append((k, int(r.get(names.STEP, 0)), float(val)))
    return out

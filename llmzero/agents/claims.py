"""Checking an agent's observations against the metrics it claims to describe.

The paper verified every stated diagnosis by hand (§4.3.2, "Diagnosis quality"); here each
observation (a claim about a named metric over a step range) is checked automatically and
recorded as supported, contradicted or unverifiable. Only the claimed direction is checked:
rising, falling, flat or spiking, read from the claim's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..metrics.store import MetricSeries
from ..metrics.summary import summarise_curve
from .base import Observation
from .diagnosis import Thresholds, sudden_share

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
UNVERIFIABLE = "unverifiable"

# wording -> claimed direction; first match in the claim wins, so negations are listed first
_DIRECTIONS = (
    ("flat", r"\b(flat|plateau\w*|stagnat\w*|stall\w*|unchanged|no (improvement|change|progress))\b"),
    ("spike", r"\b(spik\w*|jump\w*|blow[- ]?up|explod\w*|surg\w*)\b"),
    ("up", r"\b(ris\w*|rose|increas\w*|grow\w*|grew|climb\w*|improv\w*|inflat\w*|higher|up)\b"),
    ("down", r"\b(fall\w*|fell|drop\w*|decreas\w*|declin\w*|collaps\w*|shrink\w*|lower|down|degrad\w*|regress\w*)\b"),
)


@dataclass(frozen=True)
class ClaimCheck:
    verdict: str
    reason: str


def claimed_direction(claim: str) -> str | None:
    text = claim.lower()
    for direction, pattern in _DIRECTIONS:
        if re.search(pattern, text):
            return direction
    return None


def check_observation(obs: Observation, metrics: MetricSeries, *, flat_tol: float = 0.05) -> ClaimCheck:
    """Compare the claimed direction with the metric's own curve over the claimed steps."""
    direction = claimed_direction(obs.claim)
    if direction is None:
        return ClaimCheck(UNVERIFIABLE, "the claim states no direction (rise, fall, flat, spike) to check")
    lo = obs.start_step if obs.start_step is not None else -1
    hi = obs.end_step if obs.end_step is not None else 10**12
    points = [(s, v) for s, v in metrics.series(obs.metric) if lo <= s <= hi]
    if len(points) < 2:
        return ClaimCheck(UNVERIFIABLE, f"{obs.metric} has {len(points)} point(s) in steps {obs.start_step}-{obs.end_step}")
    curve = summarise_curve(obs.metric, points, flat_tol=flat_tol)
    assert curve is not None
    span = f"{obs.metric} {curve.start:.4g} -> {curve.end:.4g} over steps {curve.first_step}-{curve.last_step}"
    if direction == "spike":
        # the same test the heuristic agent uses: isolated outliers, or a rise packed into a few steps
        share = sudden_share(points)
        ok = bool(curve.spikes) or share >= Thresholds().kl_sudden
        return ClaimCheck(SUPPORTED if ok else CONTRADICTED,
                          f"{span}, max {curve.max:.4g}, {len(curve.spikes)} outlier point(s), "
                          f"{share:.0%} of the rise within a fifth of the steps")
    actual = {"rising": "up", "falling": "down", "flat": "flat"}[curve.trend]
    if actual == direction:
        return ClaimCheck(SUPPORTED, f"{span} (trend {curve.trend})")
    return ClaimCheck(CONTRADICTED, f"claimed {direction}, but {span} (trend {curve.trend})")

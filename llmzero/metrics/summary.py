"""Compact, deterministic summaries of metric curves.

Agents never read raw step dumps (§3.4): they get, per metric, start/end/min/max, a
trend, spikes and last-window statistics. The heuristic agent's rules and the LLM
prompts use the same numbers, so their diagnoses are comparable.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from .store import MetricSeries


@dataclass(frozen=True)
class CurveSummary:
    metric: str
    n: int
    first_step: int
    last_step: int
    start: float
    end: float
    min: float
    max: float
    argmax_step: int
    slope: float  # least-squares slope per step over the whole curve
    last_mean: float  # mean of the last window
    last_std: float
    last_slope: float  # slope over the last window
    trend: str  # rising / falling / flat
    spikes: list[tuple[int, float]] = field(default_factory=list)  # (step, value) far above the median

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        spikes = ", ".join(f"{v:.4g}@{s}" for s, v in self.spikes[:3]) or "none"
        return (
            f"{self.metric}: steps {self.first_step}-{self.last_step}, start {self.start:.4g}, end {self.end:.4g}, "
            f"min {self.min:.4g}, max {self.max:.4g} (step {self.argmax_step}), trend {self.trend}, "
            f"last-window mean {self.last_mean:.4g} ± {self.last_std:.3g}, spikes: {spikes}"
        )


def _slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def summarise_curve(metric: str, points: list[tuple[int, float]], *, window: float = 0.25,
                    spike_factor: float = 4.0, flat_tol: float = 0.05) -> CurveSummary | None:
    """Summarise one (step, value) curve; None when it has no finite point."""
    pts = [(s, v) for s, v in points if math.isfinite(v)]
    if not pts:
        return None
    values = [v for _, v in pts]
    n_last = max(2, int(math.ceil(len(pts) * window))) if len(pts) >= 2 else 1
    last = pts[-n_last:]
    last_vals = [v for _, v in last]
    slope = _slope(pts)
    span = pts[-1][0] - pts[0][0]
    scale = max(abs(statistics.fmean(values)), max(values) - min(values), 1e-12)
    change = slope * span / scale if span else 0.0
    trend = "rising" if change > flat_tol else "falling" if change < -flat_tol else "flat"
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values]) or 1e-12
    spikes = [(s, v) for s, v in pts if v - med > spike_factor * max(mad, abs(med) * 0.5)]
    argmax = max(pts, key=lambda p: p[1])[0]
    return CurveSummary(
        metric=metric,
        n=len(pts),
        first_step=pts[0][0],
        last_step=pts[-1][0],
        start=values[0],
        end=values[-1],
        min=min(values),
        max=max(values),
        argmax_step=argmax,
        slope=slope,
        last_mean=statistics.fmean(last_vals),
        last_std=statistics.pstdev(last_vals) if len(last_vals) > 1 else 0.0,
        last_slope=_slope(last),
        trend=trend,
        spikes=spikes,
    )


def summarise(series: MetricSeries, metrics: list[str] | None = None) -> dict[str, CurveSummary]:
    out = {}
    for key in metrics or series.keys():
        summary = summarise_curve(key, series.series(key))
        if summary is not None:
            out[key] = summary
    return out


def summaries_text(summaries: dict[str, CurveSummary]) -> str:
    return "\n".join(s.text() for s in summaries.values())

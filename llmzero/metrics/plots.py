"""Metric curve PNGs for the multimodal agents: per-node grids (proposer) and overlays (early stopper).

Images cost an agent about width*height/750 tokens, so a full 3x3 grid is 1000x750 px and a grid
with fewer rows is shorter. Figures are built with the object API (Figure + FigureCanvasAgg), not
pyplot, so nothing lands in pyplot's global figure registry and threads cannot interfere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import names
from ..atomic import atomic_writer
from .store import MetricSeries

PLOT_METRICS = (
    names.VAL_SCORE,
    names.REWARD_MEAN,
    names.KL,
    names.ENTROPY,
    names.CLIP_RATIO,
    names.GRAD_NORM,
    names.RESPONSE_LENGTH,
    names.RESPONSE_CLIP_RATIO,
    names.LR,
)

NCOLS = 3
DPI = 100
WIDTH_IN = 10.0
ROW_IN = 2.5  # 3 rows -> 7.5 in -> 750 px
CURRENT_COLOR = "tab:blue"
INCUMBENT_COLOR = "tab:green"


@dataclass
class _Curve:
    xs: list[int] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    bad_steps: list[int] = field(default_factory=list)  # steps whose value was nan/inf

    @property
    def has_data(self) -> bool:
        return bool(self.xs or self.bad_steps)


@dataclass(frozen=True)
class _Run:
    metrics: MetricSeries
    color: str
    label: str | None = None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _curve(metrics: MetricSeries, key: str, step_key: str) -> _Curve:
    # Read records directly rather than MetricSeries.series: records written before global_step
    # existed (or by a backend that omits it) fall back to the phase-local step instead of vanishing.
    c = _Curve()
    for r in metrics.records:
        v = r.get(key)
        step = r.get(step_key, r.get(names.STEP))
        if not _is_num(v) or not _is_num(step) or not math.isfinite(step):
            continue
        if math.isfinite(v):
            c.xs.append(int(step))
            c.ys.append(float(v))
        else:
            c.bad_steps.append(int(step))
    return c


def _best(c: _Curve) -> tuple[int, float] | None:
    if not c.ys:
        return None
    i = max(range(len(c.ys)), key=lambda j: (c.ys[j], -c.xs[j]))  # earliest step on ties
    return c.xs[i], c.ys[i]


def _fmt_best(c: _Curve) -> str:
    b = _best(c)
    return "no val yet" if b is None else f"val {b[1]:.3g} @ step {b[0]}"


def _draw(ax, key: str, curves: Sequence[tuple[_Run, _Curve]]) -> None:
    notes = []
    for run, c in curves:
        sparse = key == names.VAL_SCORE or len(c.xs) == 1  # a lone point is invisible without a marker
        ax.plot(c.xs, c.ys, color=run.color, lw=1.2, marker="o" if sparse else None, ms=3,
                label=run.label or "_nolegend_")
        if key == names.VAL_SCORE and (b := _best(c)) is not None:
            ax.plot([b[0]], [b[1]], marker="*", ms=11, color=run.color, mec="black", mew=0.6,
                    ls="none", label="_nolegend_")
            ax.annotate(f"{b[1]:.3g}", b, xytext=(5, 5), textcoords="offset points", fontsize=7,
                        color=run.color, fontweight="bold")
            ax.margins(y=0.15)  # headroom so the best point's label stays inside the subplot
        if c.bad_steps:
            # Divergence is what the agents must notice, so it is said in words, not only implied by a gap.
            ax.axvline(c.bad_steps[0], color="red", ls=":", lw=1, label="_nolegend_")
            who = f"{run.label}: " if run.label and len(curves) > 1 else ""
            more = f" ({len(c.bad_steps)} pts)" if len(c.bad_steps) > 1 else ""
            notes.append(f"{who}non-finite at step {c.bad_steps[0]}{more}")
    if notes:
        ax.text(0.02, 0.97, "\n".join(notes), transform=ax.transAxes, color="red", fontsize=7,
                va="top", ha="left", fontweight="bold", bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})
    # y given: matplotlib then skips placing the title above top tick labels (there are none): ~10% of a figure
    ax.set_title(key, fontsize=9, pad=3, y=1.0)
    ax.tick_params(labelsize=7, pad=1)
    ax.yaxis.get_offset_text().set_fontsize(7)
    ax.xaxis.get_offset_text().set_fontsize(7)
    ax.grid(True, lw=0.4, alpha=0.5)


def _metric_grid(runs: Sequence[_Run], *, title: str = "", step_key: str = names.STEP) -> Figure | None:
    """One subplot per PLOT_METRICS entry that any run has data for; None when there is none."""
    panels = []
    for key in PLOT_METRICS:
        curves = [(run, _curve(run.metrics, key, step_key)) for run in runs]
        if any(c.has_data for _, c in curves):
            panels.append((key, curves))
    if not panels:
        return None
    nrows = math.ceil(len(panels) / NCOLS)
    ncols = min(NCOLS, len(panels))
    fig = Figure(figsize=(WIDTH_IN, ROW_IN * nrows), dpi=DPI)
    FigureCanvasAgg(fig)
    # Fixed margins, not a layout engine: the constrained layout cost ~0.35 s per figure, more than
    # drawing it, and the stopper renders one at every check.
    height = ROW_IN * nrows
    fig.subplots_adjust(left=0.07, right=0.99, top=1 - 0.42 / height, bottom=0.5 / height, wspace=0.3,
                        hspace=0.55 / max(1.0, ROW_IN - 0.6))
    for i, (key, curves) in enumerate(panels):
        _draw(fig.add_subplot(nrows, ncols, i + 1), key, curves)
    fig.supxlabel(step_key, fontsize=8, y=0.01)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / height)
    handles = [Line2D([], [], color=r.color, lw=1.5, label=r.label) for r in runs if r.label]
    if handles:
        fig.legend(handles=handles, loc="lower right", ncols=len(handles), fontsize=8, frameon=False)
    return fig


def save_figure(fig: Figure, out: Path) -> Path:
    # Agents may read the PNG while the search rewrites it: write aside, then swap in one rename.
    with atomic_writer(out, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return Path(out)  # no fig.clear(): outside pyplot the figure is freed with its last reference


def _node_figure(metrics: MetricSeries, *, title: str = "", step_key: str = names.STEP) -> Figure | None:
    val = _curve(metrics, names.VAL_SCORE, step_key)
    full = " — ".join(p for p in (title, _fmt_best(val) if val.has_data else "") if p)
    return _metric_grid([_Run(metrics, CURRENT_COLOR)], title=full, step_key=step_key)


def _overlay_figure(current: MetricSeries, incumbent: MetricSeries | None, *, title: str = "",
                    current_label: str = "running", incumbent_label: str = "best completed",
                    step_key: str = names.GLOBAL_STEP) -> Figure | None:
    runs = [_Run(current, CURRENT_COLOR, current_label)]
    if incumbent is not None:
        runs.append(_Run(incumbent, INCUMBENT_COLOR, incumbent_label))
    summary = "  |  ".join(f"{r.label} {_fmt_best(_curve(r.metrics, names.VAL_SCORE, step_key))}" for r in runs)
    return _metric_grid(runs, title=" — ".join(p for p in (title, summary) if p), step_key=step_key)


def plot_node_metrics(metrics: MetricSeries, out: Path, *, title: str = "",
                      step_key: str = names.STEP) -> Path | None:
    """Grid of one node's curves, best val/score starred; None (and no file) when nothing to plot."""
    fig = _node_figure(metrics, title=title, step_key=step_key)
    return None if fig is None else save_figure(fig, out)


def plot_overlay(current: MetricSeries, incumbent: MetricSeries | None, out: Path, *, title: str = "",
                 current_label: str = "running", incumbent_label: str = "best completed",
                 step_key: str = names.GLOBAL_STEP) -> Path | None:
    """Current run (blue) over the best completed run (green), aligned on the path's global step."""
    fig = _overlay_figure(current, incumbent, title=title, current_label=current_label,
                          incumbent_label=incumbent_label, step_key=step_key)
    return None if fig is None else save_figure(fig, out)

"""The pictures agents are shown: a phase's metric grid (for its children's proposer) and the overlay of a
running strategy against the incumbent's (for the early stopper, §3.5).

Overlays compare whole strategies, not single phases: the running phase is drawn after the ancestors
it resumed from and the incumbent after its own, each record on its global step along its path, so
"how far along the strategy" lines up. A plotting failure is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..metrics import names
from ..metrics.store import MetricSeries
from ..state.phase_dir import METRICS_FILE
from ..state.rundir import RunDir
from ..tree import Node, Tree

log = logging.getLogger(__name__)


def path_metrics(tree: Tree, rundir: RunDir, node_id: int, own: MetricSeries | None = None) -> MetricSeries:
    """Records of every phase on the strategy path to node_id, each cut at the step its child resumed from."""
    path = tree.strategy_path(node_id)
    out = MetricSeries()
    for i, node in enumerate(path):
        series = own if (own is not None and node.id == node_id) else MetricSeries.load(
            rundir.node_dir(node.id) / METRICS_FILE)
        cut = path[i + 1].resume_step if i + 1 < len(path) else None
        for rec in series.records:
            if cut is not None and int(rec.get(names.STEP, 0)) > cut:
                continue
            rec = dict(rec)
            rec.setdefault(names.GLOBAL_STEP, node.global_offset + int(rec.get(names.STEP, 0)))
            out.records.append(rec)
    return out


def _overlay_inputs(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries, incumbent: Node,
                    incumbent_metrics: MetricSeries | None = None) -> tuple[MetricSeries, MetricSeries, Path, str]:
    """The two strategies' records, the file (nodes/<id>/overlays/step<k>.png) and the title of an overlay."""
    return (path_metrics(tree, rundir, node.id, metrics), path_metrics(tree, rundir, incumbent.id, incumbent_metrics),
            rundir.node_dir(node.id) / "overlays" / f"step{metrics.last_step():05d}.png",
            f"node {node.id} (running) vs node {incumbent.id} (best completed)")


def render_overlay(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries, incumbent: Node,
                   incumbent_metrics: MetricSeries | None = None) -> list[str]:
    """The running strategy (blue) against the incumbent's (green), as nodes/<id>/overlays/step<k>.png."""
    try:
        from ..metrics.plots import plot_overlay

        current, best, out, title = _overlay_inputs(tree, rundir, node, metrics, incumbent, incumbent_metrics)
        png = plot_overlay(current, best, out, title=title)
        return [str(png)] if png else []
    except Exception as exc:  # noqa: BLE001
        log.warning("could not plot the overlay for node %s: %s", node.id, exc)
        return []


def end_of_phase_plots(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries,
                       against: Node | None) -> Callable[[], None]:
    """The plots of a phase that just ended (its overlay against `against`, when given, then its metric grid) as one
    call that reads neither the tree nor the engine: what it needs is gathered now, so it may run on another
    thread while the search goes on (the figures use matplotlib's object API, no pyplot state)."""
    from ..metrics.plots import plot_node_metrics, plot_overlay  # matplotlib: only when a plot is drawn

    ndir = rundir.node_dir(node.id)
    own = MetricSeries.load(ndir / METRICS_FILE)
    title = f"node {node.id} ({node.kind}, {node.status})"
    overlay = _overlay_inputs(tree, rundir, node, metrics, against) if against is not None else None

    def draw() -> None:
        try:
            if overlay is not None:
                current, best, out, overlay_title = overlay
                plot_overlay(current, best, out, title=overlay_title)
            plot_node_metrics(own, ndir / "metrics.png", title=title)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            log.warning("could not plot node %s: %s", node.id, exc)
            rundir.log_event("plot_failed", node=node.id, error=str(exc))

    return draw

"""What the orchestrator looks at while and after a phase runs: path-aligned metrics, plots, the stopper.

Overlay plots compare whole strategies, not single phases: the running phase is drawn after
the ancestors it resumed from and the incumbent after its own, each record on its global
step along its path, so "how far along the strategy" lines up (§3.5).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..agents.base import Agent, AgentGaveUp, StopContext, StopDecision
from ..hparams.space import HParamSpace
from ..metrics import names
from ..metrics.store import MetricSeries
from ..state.rundir import RunDir
from .node import Node
from .tree import Tree

log = logging.getLogger(__name__)


def path_metrics(tree: Tree, rundir: RunDir, node_id: int, own: MetricSeries | None = None) -> MetricSeries:
    """Records of every phase on the strategy path to node_id, each cut at the step its child resumed from."""
    path = tree.strategy_path(node_id)
    out = MetricSeries()
    for i, node in enumerate(path):
        series = own if (own is not None and node.id == node_id) else MetricSeries.load(
            rundir.node_dir(node.id) / "metrics.jsonl")
        cut = path[i + 1].resume_step if i + 1 < len(path) else None
        for rec in series.records:
            if cut is not None and int(rec.get(names.STEP, 0)) > cut:
                continue
            rec = dict(rec)
            rec.setdefault(names.GLOBAL_STEP, node.global_offset + int(rec.get(names.STEP, 0)))
            out.records.append(rec)
    return out


def render_node_plot(rundir: RunDir, node: Node) -> Path | None:
    """The node's metric grid (metrics.png): for the report and for multimodal proposers of its children.

    A plotting failure must never cost a finished phase, so it is logged and skipped.
    """
    try:
        from ..reports.plots import plot_node_metrics

        ndir = rundir.node_dir(node.id)
        title = f"node {node.id} ({node.kind}, {node.status})"
        return plot_node_metrics(MetricSeries.load(ndir / "metrics.jsonl"), ndir / "metrics.png", title=title)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        log.warning("could not plot node %s: %s", node.id, exc)
        rundir.log_event("plot_failed", node=node.id, error=str(exc))
        return None


def render_overlay(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries, incumbent: Node,
                   incumbent_metrics: MetricSeries | None = None) -> list[str]:
    try:
        from ..reports.plots import plot_overlay

        out = rundir.node_dir(node.id) / "overlays" / f"step{metrics.last_step():05d}.png"
        png = plot_overlay(path_metrics(tree, rundir, node.id, metrics), path_metrics(tree, rundir, incumbent.id, incumbent_metrics),
                           out, title=f"node {node.id} (running) vs node {incumbent.id} (best completed)")
        return [str(png)] if png else []
    except Exception as exc:  # noqa: BLE001
        log.warning("could not plot the overlay for node %s: %s", node.id, exc)
        return []


def ask_stopper(agent: Agent, fallback: Agent | None, ctx: StopContext) -> StopDecision:
    """The agent's CONTINUE/STOP, or the fallback's when the agent gives up; cost of both is kept."""
    try:
        return agent.should_stop(ctx)
    except AgentGaveUp as exc:
        if fallback is None or fallback is agent:
            return StopDecision(False, f"CONTINUE: the stopper gave no answer ({exc})", exc.cost)
        decision = fallback.should_stop(ctx)
        decision.cost = decision.cost.add(exc.cost)
        decision.reason += f" (fallback: {agent.name} gave up: {exc})"
        return decision


def write_search_artifacts(tree: Tree, rundir: RunDir, space: HParamSpace) -> dict[str, Path]:
    """Search-level plots (paper Figs 2, 3, 5 and the tree) and the HTML/Markdown report; never fatal."""
    out: dict[str, Path] = {}
    try:
        from ..reports.search_plots import render_search_plots

        out.update(render_search_plots(tree, rundir.root, space))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not draw the search plots: %s", exc)
    try:
        from ..reports.html import write_report

        out["report.html"], out["report.md"] = write_report(rundir.root)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write the report: %s", exc)
        rundir.log_event("report_failed", error=str(exc))
    return out


def search_rows(tree: Tree) -> list[dict]:
    """The per-node table (paper Tables 18-21) as plain rows, for W&B."""
    return [{"node": n.id, "kind": n.kind, "parent": n.parent, "status": n.status, "pruned": n.pruned,
             "best_val": n.best_val, "best_step": n.best_step, "test": n.test_score,
             "steps": n.steps_done, "max_steps": n.max_steps, "wall_hrs": n.cost.wall_s / 3600,
             "gpu_hrs": n.cost.gpu_s / 3600, "agent_usd": n.cost.agent_usd, "diagnosis": n.diagnosis[:500]}
            for n in tree]

"""Agentic early stopping in flight (§3.5): when to consult the stopper, what it is shown, what it decides.

The paper checks every 900 s; on short phases a step interval is more useful, so either (or
both) can be set. A minimum number of validation points guards against stopping a phase on its
first noisy evaluation. The overlay plots it shows a multimodal stopper are drawn by agent_plots.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..agents.base import Agent, AgentGaveUp, StopContext, StopDecision
from ..agents.fallback import consult
from ..config.schema import EarlyStopConfig
from ..metrics import names
from ..metrics.store import MetricSeries
from ..state.phase_dir import METRICS_FILE
from ..state.rundir import RunDir
from ..tree import Node, Tree
from .agent_plots import render_overlay


@dataclass
class StopSchedule:
    """When each running phase is next due for a check (its last check's step and time)."""

    config: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    _last_step: dict[int, int] = field(default_factory=dict)
    _last_time: dict[int, float] = field(default_factory=dict)

    def due(self, node_id: int, metrics: MetricSeries, now: float | None = None) -> bool:
        c = self.config
        if not c.enabled or len(metrics.series(names.VAL_SCORE)) < c.min_evals:
            return False
        now = time.monotonic() if now is None else now
        step = metrics.last_step()
        last_step = self._last_step.setdefault(node_id, 0)
        last_time = self._last_time.setdefault(node_id, now)
        by_steps = c.interval_steps is not None and step - last_step >= c.interval_steps
        by_time = c.interval_s is not None and now - last_time >= c.interval_s
        if by_steps or by_time:
            self._last_step[node_id] = step
            self._last_time[node_id] = now
            return True
        return False

    def overlay_at_check(self, agent_reads_images: bool) -> bool:
        return self.config.overlays == "every_check" or (self.config.overlays == "auto" and agent_reads_images)

    def overlay_at_end(self, agent_reads_images: bool) -> bool:
        # A stopper that reads numbers does not need a picture per check (about 1 s of matplotlib each);
        # one per phase, at its end, still shows the report what the stopper was judging.
        return self.config.enabled and self.config.overlays == "auto" and not agent_reads_images

    def forget(self, node_id: int) -> None:
        self._last_step.pop(node_id, None)
        self._last_time.pop(node_id, None)


def ask_stopper(agent: Agent, fallback: Agent | None, ctx: StopContext) -> StopDecision:
    """The agent's CONTINUE/STOP, or the fallback's when the agent gives up; with nobody to answer, CONTINUE."""
    try:
        got = consult(agent, fallback, lambda a: a.should_stop(ctx))
    except AgentGaveUp as exc:
        return StopDecision(False, f"CONTINUE: the stopper gave no answer ({exc})", exc.cost)
    got.answer.cost = got.cost
    got.answer.reason += got.note
    return got.answer


def check_running(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries, schedule: StopSchedule,
                  agent: Agent, fallback: Agent | None, budget_left: int) -> StopDecision | None:
    """Consult the stopper about a running phase when it is due and an incumbent exists, else None."""
    if node.stop_reason or not schedule.due(node.id, metrics):
        return None
    incumbent = tree.best_node()
    if incumbent is not None and incumbent.id == node.id:
        incumbent = None
    if incumbent is None and not getattr(agent, "checks_alone", False):
        return None  # the stopper compares against the incumbent (§3.5); the skill agent checks any job (B.7)
    ctx = StopContext(
        node=node, metrics=metrics, incumbent=incumbent,
        incumbent_metrics=MetricSeries.load(rundir.node_dir(incumbent.id) / METRICS_FILE) if incumbent else None,
        steps_left=max(0, node.max_steps - metrics.last_step()), budget_left=budget_left,
        record_dir=rundir.node_dir(node.id),
    )
    if incumbent is not None and schedule.overlay_at_check(agent.wants_images):
        ctx.plots = render_overlay(tree, rundir, node, metrics, incumbent, ctx.incumbent_metrics)
    decision = ask_stopper(agent, fallback, ctx)
    rundir.log_event("stop_check", node=node.id, step=metrics.last_step(), stop=decision.stop,
                     reason=decision.reason, plots=ctx.plots)
    return decision

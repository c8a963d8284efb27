"""Agentic early stopping in flight (§3.5): when to consult the stopper, what it is shown, what it decides.

The paper checks every 900 s; on short phases a step interval is more useful, so either (or
both) can be set. A minimum number of validation points guards against stopping a phase on its
first noisy evaluation. The overlay plots it shows a multimodal stopper are drawn by agent_plots.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..agents.base import Agent, AgentGaveUp, StopContext, StopDecision
from ..agents.fallback import consult
from ..config.schema import EarlyStopConfig
from ..metrics import names
from ..metrics.store import MetricSeries
from ..state.phase_dir import METRICS_FILE
from ..state.rundir import RunDir
from ..metrics.stop_evidence import StopEvidence, best_until, gather
from ..tree import Node, NodeStatus, Tree
from .agent_plots import path_metrics, render_overlay


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


@dataclass
class CurveBook:
    """Validation curves of the tree's phases, read from their metrics.jsonl; a finished phase's is read once."""

    rundir: RunDir
    _finished: dict[int, list[tuple[int, float]]] = field(default_factory=dict)

    def of(self, node: Node) -> list[tuple[int, float]]:
        if node.id in self._finished:
            return self._finished[node.id]
        curve = MetricSeries.load(self.rundir.node_dir(node.id) / METRICS_FILE).series(names.VAL_SCORE)
        if node.finished:
            self._finished[node.id] = curve
        return curve

    def evidence(self, tree: Tree, node: Node, metrics: MetricSeries, incumbent: Node | None,
                 incumbent_metrics: MetricSeries | None, iterations_left: int,
                 config: EarlyStopConfig) -> StopEvidence | None:
        """The evidence of one check (metrics/stop_evidence.py), from the running phase and the tree's history."""
        curve = metrics.series(names.VAL_SCORE)
        others = [n for n in tree if n.id != node.id and n.finished]
        from_scratch = node.resume_from is None
        comparable = [(self.of(n), n.max_steps) for n in others if n.status == NodeStatus.COMPLETED
                      and not n.stop_reason and (n.resume_from is None) == from_scratch]
        path = (path_metrics(tree, self.rundir, incumbent.id, incumbent_metrics).series(
            names.VAL_SCORE, step_key=names.GLOBAL_STEP) if incumbent is not None else None)
        # like with like: the incumbent's best on the in-flight curve, scored on the same prompts as this phase's
        # (a fixed val slice differs from the whole split by its own offset; node.best_val is the whole split's)
        own = best_until(self.of(incumbent), math.inf) if incumbent is not None else None
        incumbent_best = own if own is not None else (incumbent.best_val if incumbent is not None else None)
        return gather(curve=curve, step=metrics.last_step(), global_offset=node.global_offset,
                      max_steps=node.max_steps, iterations_left=iterations_left,
                      incumbent=incumbent.id if incumbent else None,
                      incumbent_best=incumbent_best, incumbent_path=path,
                      noise_curves=[curve, *(self.of(n) for n in others)], comparable=comparable,
                      noise_prior=config.noise_prior, noise_floor=config.noise_floor, units=config.noise_units)


def check_running(tree: Tree, rundir: RunDir, node: Node, metrics: MetricSeries, schedule: StopSchedule,
                  agent: Agent, fallback: Agent | None, budget_left: int,
                  curves: CurveBook | None = None) -> StopDecision | None:
    """Consult the stopper about a running phase when it is due and an incumbent exists, else None.

    Each decision is kept on the node (node.stop_checks) with the evidence it was taken on."""
    if node.stop_reason or not schedule.due(node.id, metrics):
        return None
    incumbent = tree.best_node()
    if incumbent is not None and incumbent.id == node.id:
        incumbent = None
    if incumbent is None and not getattr(agent, "checks_alone", False):
        return None  # the stopper compares against the incumbent (§3.5); the skill agent checks any job (B.7)
    incumbent_metrics = MetricSeries.load(rundir.node_dir(incumbent.id) / METRICS_FILE) if incumbent else None
    curves = curves or CurveBook(rundir)
    ctx = StopContext(
        node=node, metrics=metrics, incumbent=incumbent, incumbent_metrics=incumbent_metrics,
        steps_left=max(0, node.max_steps - metrics.last_step()), budget_left=budget_left,
        record_dir=rundir.node_dir(node.id),
        evidence=curves.evidence(tree, node, metrics, incumbent, incumbent_metrics, budget_left, schedule.config),
    )
    if incumbent is not None and schedule.overlay_at_check(agent.wants_images):
        ctx.plots = render_overlay(tree, rundir, node, metrics, incumbent, ctx.incumbent_metrics)
    decision = ask_stopper(agent, fallback, ctx)
    step = metrics.last_step()
    node.stop_checks.append({
        "step": step, "global_step": node.global_offset + step, "stop": decision.stop, "reason": decision.reason,
        "agent": agent.name, "evidence": ctx.evidence.to_dict() if ctx.evidence else None, "outcome": None})
    rundir.log_event("stop_check", node=node.id, step=step, stop=decision.stop,
                     reason=decision.reason, plots=ctx.plots)
    return decision

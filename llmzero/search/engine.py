"""The search loop (Algorithm 1): select, propose, run, monitor, backpropagate, prune.

State lives in tree.json and is rewritten atomically after every change, so the loop can
be killed at any moment and resumed: finished phases are kept, a phase that was in flight
is launched again (from its own last checkpoint when it saved one), and the iteration
count carries on. Up to `concurrency` phases run at once; with more than one, phases in
flight count as unvalidated visits (virtual loss, tree.visit_stats) so selections spread.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..agents.base import Agent, StopContext
from ..agents.llm.calls import CallLog
from ..execution.early_stop import StopSchedule
from ..hparams.space import HParamSpace
from ..metrics import names
from ..metrics.store import MetricSeries, read_records
from ..state.atomic import write_text_atomic, write_yaml_atomic
from ..state.rundir import RunDir
from ..strategy.recipe import build_recipe
from ..trainers.base import PhaseHandle, PhaseResult, PhaseSpec, checkpoint_dir, list_checkpoints
from ..agents.validation import PlanRules, ProposalError
from .node import Node, NodeKind, NodeStatus
from .monitoring import ask_stopper, render_node_plot, render_overlay, search_rows, write_search_artifacts
from .planning import PlanningContext, Unfixable, plan_node
from .selection import ActionKind, select
from .tree import Tree, TreeLimits
from .uct import UCTParams


_ACTION_KIND = {ActionKind.ROOT: NodeKind.ROOT, ActionKind.EXPAND: NodeKind.EVOLVE,
                ActionKind.DEBUG: NodeKind.DEBUG, ActionKind.SCRATCH: NodeKind.SCRATCH}


@dataclass
class SearchSettings:
    budget: int = 8
    seed: int = 0
    rho_min: float = 0.2
    max_steps_per_phase: int = 200
    eval_every: int = 5
    save_every: int = 5
    concurrency: int = 1
    gpus_per_phase: int = 0
    poll_interval_s: float = 0.2
    max_gpu_hours: float | None = None
    max_agent_usd: float | None = None
    uct: UCTParams = field(default_factory=UCTParams)
    limits: TreeLimits = field(default_factory=TreeLimits)
    stop_schedule: StopSchedule = field(default_factory=StopSchedule)


@dataclass
class SearchResult:
    tree: Tree
    best: Node | None
    path: list[Node]
    stop_reason: str
    recipe: dict[str, Any] | None
    base_scores: dict[str, float] = field(default_factory=dict)  # the base model on val and test
    artifacts: dict[str, Any] = field(default_factory=dict)  # plots/*.png, report.html, report.md


@dataclass
class _Active:
    node: Node
    handle: PhaseHandle
    metrics: MetricSeries


class SearchEngine:
    def __init__(self, *, rundir: RunDir, tree: Tree, space: HParamSpace, trainer: Any, agent: Agent,
                 fallback_agent: Agent | None, root_hparams: dict[str, Any], settings: SearchSettings,
                 display: Any = None, meta: dict[str, Any] | None = None, tracker: Any = None):
        self.rundir = rundir
        self.tree = tree
        self.space = space
        self.trainer = trainer
        self.agent = agent
        self.fallback = fallback_agent
        self.root_hparams = root_hparams
        self.s = settings
        self.display = display
        self.meta = meta or {}
        self.tracker = tracker  # W&B (llmzero/tracking/wandb_runs.py) or None
        self.active: dict[int, _Active] = {}
        self.artifacts: dict[str, Any] = {}  # search-level plots and report, written at the end

    # ---- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        self.rundir.save_tree(self.tree, self.meta)

    def _notify(self, method: str, *args: Any) -> None:
        if self.display is not None:
            getattr(self.display, method)(*args)

    def _track(self, method: str, *args: Any) -> None:
        if self.tracker is not None:
            getattr(self.tracker, method)(*args)

    # ---- budget -----------------------------------------------------------------------------
    def gpu_hours(self) -> float:
        return sum(n.cost.gpu_s for n in self.tree) / 3600.0

    def agent_usd(self) -> float:
        return sum(n.cost.agent_usd for n in self.tree)

    def budget_exhausted(self) -> str | None:
        if self.tree.iteration >= self.s.budget:
            return f"iteration budget reached ({self.s.budget})"
        if self.s.max_gpu_hours is not None and self.gpu_hours() >= self.s.max_gpu_hours:
            return f"GPU-hour cap reached ({self.gpu_hours():.2f} ≥ {self.s.max_gpu_hours})"
        if self.s.max_agent_usd is not None and self.agent_usd() >= self.s.max_agent_usd:
            return f"agent dollar cap reached (${self.agent_usd():.2f} ≥ ${self.s.max_agent_usd})"
        return None

    # ---- main loop --------------------------------------------------------------------------
    def run(self) -> SearchResult:
        self._notify("start", self)
        stop_reason = ""
        try:
            self._recover_in_flight()
            while True:
                stop_reason = self._fill_slots() or stop_reason
                if not self.active:
                    break
                self._poll_once()
                if self.active:
                    time.sleep(self.s.poll_interval_s)
        except BaseException:
            for act in self.active.values():
                act.handle.kill()
            self._track("close")
            self._notify("abort", self)
            raise
        finally:
            self.save()
        result = self._finish_search(stop_reason or "search tree exhausted")
        self._notify("finish", self, result)
        return result

    def _fill_slots(self) -> str | None:
        while len(self.active) < self.s.concurrency:
            reason = self.budget_exhausted()
            if reason:
                return reason
            action = select(self.tree, self.s.limits, self.s.uct, self.s.rho_min)
            if action is None:
                return None if self.active else "every subtree is terminal"
            try:
                node = plan_node(action, self._planning_context())
            except Unfixable:
                self.save()  # the failed node is now marked unfixable: terminal
                continue
            except ProposalError as exc:
                node = self._rejected_proposal(action, exc)
            self.tree.iteration += 1
            node.iteration = self.tree.iteration
            self.tree.add(node)
            self.rundir.log_event("created", node=node.id, kind=node.kind, parent=node.parent,
                                  trace=action.trace)
            self.save()
            if node.status == NodeStatus.PENDING:
                self._launch(node)
        return None

    def _rejected_proposal(self, action: Any, exc: Exception) -> Node:
        """Every agent (fallback included) answered outside the schema: record a failed, unfixable phase
        instead of stopping the search, so the iteration is accounted for and UCT sees the failure."""
        parent = self.tree[action.node] if action.node is not None else None
        node = Node(id=self.tree.new_id(), parent=action.node, kind=_ACTION_KIND.get(action.kind, NodeKind.EVOLVE),
                    hparams=dict(parent.hparams) if parent else dict(self.root_hparams),
                    status=NodeStatus.FAILED, error=f"proposal rejected: {exc}", unfixable=True,
                    started_at=time.time(), finished_at=time.time(),
                    debug_of=action.node if action.kind == ActionKind.DEBUG else None)
        self.rundir.write_node_file(node.id, "error.txt", node.error + "\n")
        self.rundir.log_event("proposal_rejected", node=node.id, action=action.kind, error=str(exc))
        self._notify("phase_finished", self, node)
        return node

    def _planning_context(self) -> PlanningContext:
        rules = PlanRules(space=self.space, steps_per_epoch=self.trainer.steps_per_epoch,
                          max_steps_cap=self.s.max_steps_per_phase, trainer_check=self.trainer.check)
        return PlanningContext(
            tree=self.tree, rundir=self.rundir, rules=rules, agent=self.agent, fallback=self.fallback,
            root_hparams=self.root_hparams, budget_left=max(0, self.s.budget - self.tree.iteration - 1),
        )

    # ---- phases ------------------------------------------------------------------------------
    def _spec(self, node: Node, resume_own: bool) -> PhaseSpec:
        init = None
        if node.resume_from is not None:
            init = str(checkpoint_dir(self.rundir.node_dir(node.resume_from), node.resume_step))
        return PhaseSpec(
            node_id=node.id, hparams=dict(node.hparams), output_dir=str(self.rundir.node_dir(node.id)),
            max_steps=node.max_steps, init_checkpoint=init, eval_every=self.s.eval_every,
            save_every=self.s.save_every, seed=self.s.seed, global_offset=node.global_offset,
            resume_own=resume_own,
        )

    def _launch(self, node: Node, resume_own: bool = False) -> None:
        spec = self._spec(node, resume_own)
        self.rundir.write_node_file(node.id, "spec.yaml", spec.to_dict())
        node.status = NodeStatus.RUNNING
        node.started_at = time.time()
        node.attempts += 1
        self.save()
        handle = self.trainer.start(spec)
        # The handle tails metrics.jsonl from its start, so a resumed phase re-reads its earlier steps.
        self.active[node.id] = _Active(node, handle, MetricSeries())
        self._track("phase_started", node, node.attempts)
        self._notify("phase_started", self, node)

    def _recover_in_flight(self) -> None:
        """After a crash: phases left pending or running are launched again before anything new."""
        for node in self.tree:
            if node.status not in NodeStatus.IN_FLIGHT or node.pruned:
                continue
            ndir = self.rundir.node_dir(node.id)
            own = list_checkpoints(ndir)
            if own:
                _truncate_metrics(ndir / "metrics.jsonl", max(own))
            else:
                (ndir / "metrics.jsonl").unlink(missing_ok=True)
            self.rundir.log_event("recovered", node=node.id, from_step=max(own) if own else 0)
            self._launch(node, resume_own=bool(own))

    def _poll_once(self) -> None:
        for nid in list(self.active):
            act = self.active[nid]
            fresh = act.handle.poll()
            if fresh:
                act.metrics.extend(fresh)
                self._track("phase_metrics", nid, fresh)
                act.node.steps_done = act.metrics.last_step()
                act.node.best_val, act.node.best_step = act.metrics.best_val()
                self._notify("progress", self, act.node, act.metrics)
                self._maybe_early_stop(act)
            if act.handle.done():
                last = act.handle.poll()
                act.metrics.extend(last)
                self._track("phase_metrics", nid, last)
                self._complete(act, act.handle.result())

    def _maybe_early_stop(self, act: _Active) -> None:
        if act.node.stop_reason or not self.s.stop_schedule.due(act.node.id, act.metrics):
            return
        incumbent = self.tree.best_node()
        if incumbent is None or incumbent.id == act.node.id:
            return
        ctx = StopContext(
            node=act.node, metrics=act.metrics, incumbent=incumbent,
            incumbent_metrics=MetricSeries.load(self.rundir.node_dir(incumbent.id) / "metrics.jsonl"),
            steps_left=max(0, act.node.max_steps - act.metrics.last_step()),
            budget_left=max(0, self.s.budget - self.tree.iteration),
            calls=CallLog(self.rundir.node_dir(act.node.id)),
        )
        if self.s.stop_schedule.overlay_at_check(self._agent_reads_images()):
            ctx.plots = render_overlay(self.tree, self.rundir, act.node, act.metrics, incumbent, ctx.incumbent_metrics)
        decision = ask_stopper(self.agent, self.fallback, ctx)
        act.node.cost = act.node.cost.add(decision.cost)
        self.rundir.log_event("stop_check", node=act.node.id, step=act.metrics.last_step(),
                              stop=decision.stop, reason=decision.reason, plots=ctx.plots)
        if decision.stop:
            act.node.stop_reason = decision.reason
            act.handle.stop(decision.reason)
            self.save()

    def _agent_reads_images(self) -> bool:
        return bool(getattr(self.agent, "wants_images", False))

    def _complete(self, act: _Active, result: PhaseResult) -> None:
        node = act.node
        incumbent = self.tree.best_node()  # before this node counts: what it was running against
        if (incumbent is not None and act.metrics.records and self.s.stop_schedule.enabled
                and self.s.stop_schedule.overlay_at_end(self._agent_reads_images())):
            render_overlay(self.tree, self.rundir, node, act.metrics, incumbent)
        del self.active[node.id]
        self.s.stop_schedule.forget(node.id)
        node.status = result.status
        node.steps_done = result.steps_done
        node.best_val, node.best_step = result.best_val, result.best_step
        node.val_subscores = dict(result.val_subscores)
        node.test_score = result.test_score
        node.checkpoints = list(result.checkpoints)
        node.error = result.error
        node.finished_at = time.time()
        node.cost.wall_s += result.wall_s
        node.cost.gpu_s += result.gpu_s or result.wall_s * self.s.gpus_per_phase
        if result.status == NodeStatus.FAILED:
            write_text_atomic(self.rundir.node_dir(node.id) / "error.txt",
                              f"{result.error}\n\n--- log tail ---\n{result.log_tail}\n")
        render_node_plot(self.rundir, node)
        lifted = self.tree.lift_fixed_debug(node.id) if node.validated else None
        if lifted is not None:
            self.rundir.log_event("debug_fixed", node=node.id, origin=lifted.id, new_parent=node.parent)
        self.rundir.log_event("finished", node=node.id, status=node.status, best_val=node.best_val,
                              best_step=node.best_step, error=(node.error or "")[:500])
        self.save()
        self._write_recipe()
        self._track("phase_finished", node)
        self._notify("phase_finished", self, node)

    # ---- results -----------------------------------------------------------------------------
    def _write_recipe(self) -> dict[str, Any] | None:
        best = self.tree.best_node()
        if best is None:
            return None
        recipe = build_recipe(self.tree, best, self.meta)
        write_yaml_atomic(self.rundir.recipe_file, recipe)
        return recipe

    def _finish_search(self, stop_reason: str) -> SearchResult:
        """The paper reports test at the best validation step, and the base model for reference."""
        best = self.tree.best_node()
        evaluate = getattr(self.trainer, "evaluate", None)
        if evaluate is not None:
            if best is not None and best.test_score is None and best.best_step in best.checkpoints:
                self._notify("message", f"evaluating node {best.id} step {best.best_step} on the test split")
                scores = evaluate(str(checkpoint_dir(self.rundir.node_dir(best.id), best.best_step)), "test")
                if scores and "score" in scores:
                    best.test_score = float(scores["score"])
            base = self.meta.setdefault("base_model", {})
            for split in ("val", "test"):
                if split not in base:  # once per search: a resumed search keeps the earlier figures
                    self._notify("message", f"evaluating the base model on the {split} split")
                    scores = evaluate(None, split)
                    if scores and "score" in scores:
                        base[split] = float(scores["score"])
        self.meta["stop_reason"] = stop_reason
        self.meta["finished_at"] = time.time()
        self.save()
        recipe = self._write_recipe()
        self._notify("message", "writing plots and the report")
        self.artifacts = write_search_artifacts(self.tree, self.rundir, self.space)
        self._track("search_finished", search_rows(self.tree), {k: v for k, v in self.artifacts.items()
                                                               if str(v).endswith(".png")},
                    {"stop_reason": stop_reason, "best_node": best.id if best else None,
                     "best_val": best.best_val if best else None, "best_test": best.test_score if best else None,
                     "base_model": self.meta.get("base_model", {})})
        path = self.tree.strategy_path(best.id) if best else []
        return SearchResult(self.tree, best, path, stop_reason, recipe, dict(self.meta.get("base_model", {})),
                            dict(self.artifacts))


def _truncate_metrics(path, last_step: int) -> None:
    """Drop records past the checkpoint a recovered phase will resume from, so steps are not doubled."""
    keep = [r for r in read_records(path) if int(r.get(names.STEP, 0)) <= last_step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in keep))

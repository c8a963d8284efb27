"""The search loop (Algorithm 1): select, propose, run, monitor, backpropagate, prune.

State lives in tree.json and is rewritten atomically after every change, so the loop can
be killed at any moment and resumed: finished phases are kept, a phase that was in flight
is launched again (from its own last checkpoint when it saved one), and the iteration
count carries on. Up to `cluster.max_concurrent` phases run at once; phases in flight count
as unvalidated visits (virtual loss, visits.visit_stats) so selections spread.

Helpers each do one job: selection.py (UCT, eqs. 5-8), phase_rules.py (agent → validated node),
early_stop.py (§3.5), final_eval.py (test and base-model scores), budget.py; everything that
watches the search is an observer (observer.py).
"""

from __future__ import annotations

import errno
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..agents.base import Agent, AgentGaveUp
from ..agents.validation import ProposalError
from ..atomic import write_text_atomic, write_yaml_atomic
from ..executors.base import Executor
from ..executors.local import LocalExecutor
from ..hparams.space import HParamSpace
from ..metrics.store import MetricSeries
from ..state.phase_dir import checkpoint_dir, prepare_for_start
from ..state.rundir import RunDir
from ..strategy.recipe import build_recipe
from ..trainers.base import PhaseHandle, PhaseResult, PhaseSpec, TrainerBackend
from ..tree import Cost, Node, NodeKind, NodeStatus, Tree
from . import budget
from .agent_plots import end_of_phase_plots
from .early_stop import CurveBook, StopSchedule, check_running
from .final_eval import evaluate_final
from .observer import Observers, RunningPhase, SearchObserver, SearchView
from .planners import AdaptivePlanner, Planner
from .phase_rules import PlanningContext, ScheduleEnded, Unfixable, plan_rules
from .result import SearchResult
from .stop_outcomes import settle_outcomes
from .selection import Action
from .settings import SearchSettings


@dataclass
class _Active:
    node: Node
    handle: PhaseHandle
    metrics: MetricSeries
    state: str = "running"  # or "queued": the executor's scheduler has not started it yet


DISK_ERRORS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
               errno.EDQUOT: "Disk quota exceeded"}


def disk_fault(result: PhaseResult, phase_dir: Path) -> OSError | None:
    """A phase that failed because its disk did (full, read-only, over quota) is no failure of its configuration:
    the error analyzer must not "fix" it, and a rerun with space freed must run it again. Returned as the OSError
    the search ends with (one filesystem message, llmzero/cli_errors.py)."""
    if result.status != NodeStatus.FAILED:
        return None
    text = f"{result.error or ''}\n{result.log_tail or ''}"
    for code, words in DISK_ERRORS.items():
        if words in text or f"[Errno {code}]" in text:
            return OSError(code, words, str(phase_dir))
    return None


class SearchEngine:
    def __init__(self, *, rundir: RunDir, tree: Tree, space: HParamSpace, trainer: TrainerBackend, agent: Agent,
                 fallback_agent: Agent | None, root_hparams: dict[str, Any], settings: SearchSettings,
                 observers: Sequence[SearchObserver] = (), meta: dict[str, Any] | None = None,
                 executor: Executor | None = None, planner: Planner | None = None):
        self.rundir = rundir
        self.tree = tree
        self.space = space
        self.trainer = trainer
        self.executor = executor or LocalExecutor()
        self.planner = planner or AdaptivePlanner(settings.search)
        self.agent = agent
        self.fallback = fallback_agent
        self.root_hparams = root_hparams
        self.settings = settings
        self.observers = Observers(observers)
        self.meta = meta or {}
        self.schedule = StopSchedule(settings.search.early_stop)
        self.curves = CurveBook(rundir)
        self.active: dict[int, _Active] = {}
        # The plots of ended phases (about a second of matplotlib each) are drawn on this thread while the loop
        # goes on, unless the agent reads them before it proposes the children.
        self._plotter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmzero-plots")

    def save(self) -> None:
        self.rundir.save_tree(self.tree, self.meta)

    def view(self) -> SearchView:
        s = self.settings.search
        return SearchView(
            search_dir=self.rundir.root, tree=self.tree,
            running=tuple(RunningPhase(a.node, a.metrics, a.state) for a in self.active.values()),
            budget=s.budget, gpu_hours=budget.gpu_hours(self.tree), max_gpu_hours=s.max_gpu_hours,
            agent_usd=budget.agent_usd(self.tree), max_agent_usd=s.max_agent_usd)

    # ---- Algorithm 1 --------------------------------------------------------------------------
    def run(self) -> SearchResult:
        self.observers.on_search_start(self.view())
        stop_reason = ""
        try:
            self._recover_in_flight()
            while True:
                stop_reason = self._fill_slots() or stop_reason  # select, propose, launch
                self._flush()
                if not self.active:
                    break
                self._poll_once()  # monitor, early-stop, backpropagate finished phases
                if self.active:
                    time.sleep(self.settings.cluster.poll_interval_s)
        except BaseException:
            for act in self.active.values():
                act.handle.kill()
                act.node.job_id = None  # stopped by the search itself: a rerun starts it again from its checkpoint
            self.observers.on_search_abort(self.view())
            raise
        finally:
            self.save()
            self._plotter.shutdown(wait=True)  # every plot is on disk before the report or a rerun reads them
        return self._finish(stop_reason or "search tree exhausted")

    def _fill_slots(self) -> str | None:
        while len(self.active) < self.settings.cluster.max_concurrent:
            reason = budget.exhausted(self.tree, self.settings.search)
            if reason:
                return reason
            action = self.planner.next_action(self.tree)
            if action is None:
                return None if self.active else self.planner.done_reason(self.tree)
            try:
                node = self.planner.plan(action, self._planning_context())
            except Unfixable:
                self.save()  # the failed node is now marked unfixable: terminal
                continue
            except ScheduleEnded:
                self.save()  # the planner now has nothing left: next_action says so, done_reason says why
                continue
            except (ProposalError, AgentGaveUp) as exc:
                node = self._rejected_proposal(action, exc)
            left = budget.steps_left(self.tree, self.settings.search)
            if node.status == NodeStatus.PENDING and left is not None and node.max_steps > left:
                node.max_steps = max(1, left)  # the last phase under search.max_trainer_steps: exactly the budget
            self.tree.iteration += 1
            node.iteration = self.tree.iteration
            self.tree.add(node)
            self.rundir.log_event("created", node=node.id, kind=node.kind, parent=node.parent, trace=action.trace)
            self.save()
            if node.status == NodeStatus.PENDING:
                self._launch(node)
        return None

    def _flush(self) -> None:
        flush = getattr(self.executor, "flush", None)
        if flush is not None:
            flush()  # an executor that submits in batches sends what was launched in this round

    def _planning_context(self) -> PlanningContext:
        rules = plan_rules(self.space, self.trainer, self.settings.search.max_steps_per_phase)
        return PlanningContext(tree=self.tree, rundir=self.rundir, rules=rules, agent=self.agent,
                               fallback=self.fallback, root_hparams=self.root_hparams,
                               budget_left=max(0, budget.iterations_left(self.tree, self.settings.search) - 1))

    def _rejected_proposal(self, action: Action, exc: Exception) -> Node:
        """Every agent (fallback included) answered outside the schema: record a failed, unfixable phase
        instead of stopping the search, so the iteration is accounted for and UCT sees the failure."""
        parent = self.tree[action.node] if action.node is not None else None
        now = time.time()
        node = Node(id=self.tree.new_id(), parent=action.node, kind=action.kind,
                    hparams=dict(parent.hparams) if parent else dict(self.root_hparams),
                    status=NodeStatus.FAILED, error=f"proposal rejected: {exc}", unfixable=True,
                    started_at=now, finished_at=now, cost=getattr(exc, "cost", None) or Cost(),
                    debug_of=action.node if action.kind == NodeKind.DEBUG else None)
        self.rundir.write_node_file(node.id, "error.txt", node.error + "\n")
        self.rundir.log_event("proposal_rejected", node=node.id, action=action.kind, error=str(exc))
        self.observers.on_phase_end(self.view(), node)
        return node

    # ---- phases ------------------------------------------------------------------------------
    def _spec(self, node: Node, resume_own: bool) -> PhaseSpec:
        init = None
        if node.resume_from is not None:
            init = str(checkpoint_dir(self.rundir.node_dir(node.resume_from), node.resume_step))
        return PhaseSpec(
            node_id=node.id, hparams=dict(node.hparams), output_dir=str(self.rundir.node_dir(node.id)),
            max_steps=node.max_steps, init_checkpoint=init, eval_every=self.settings.eval_every,
            save_every=self.settings.save_every, seed=self.settings.search.seed, global_offset=node.global_offset,
            resume_own=resume_own, job_id=node.job_id,
        )

    def _launch(self, node: Node, resume_own: bool = False) -> None:
        # An executor that can find a phase again after a crash gets an id chosen here and saved in tree.json
        # before it submits: a search killed during submission still knows what may be running.
        node.job_id = self._job_id(node) if hasattr(self.executor, "reattach") else None
        spec = self._spec(node, resume_own)
        self.rundir.write_node_file(node.id, "spec.yaml", spec.to_dict())
        node.status = NodeStatus.RUNNING
        node.started_at = time.time()
        node.attempts += 1
        self.save()
        # The handle tails metrics.jsonl from its start, so a resumed phase re-reads its earlier steps.
        self._watch(node, self.executor.launch(self.trainer, spec))

    def _job_id(self, node: Node) -> str:
        """Unique on a shared cluster, and readable in `ray job list`: the search's name, the node, a random tail."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(self.meta.get("search_id") or self.rundir.root.name))[:60]
        return f"llmzero-{name}-n{node.id}-{uuid.uuid4().hex[:8]}"

    def _watch(self, node: Node, handle: PhaseHandle) -> None:
        act = self.active[node.id] = _Active(node, handle, MetricSeries())
        self.observers.on_phase_start(self.view(), node)
        self._note_state(act)

    def _note_state(self, act: _Active) -> None:
        state = getattr(act.handle, "state", "running")
        if state != act.state:
            act.state = state
            self.rundir.log_event("phase_state", node=act.node.id, state=state)
            self.observers.on_phase_state(self.view(), act.node, state)

    def _recover_in_flight(self) -> None:
        """After a crash: a phase whose job outlived the search is watched again; the others left pending or
        running are launched again (from their own last checkpoint when they saved one), before anything new."""
        reattach = getattr(self.executor, "reattach", None)
        for node in self.tree:
            if node.status not in NodeStatus.IN_FLIGHT or node.pruned:
                continue
            handle = reattach(node.job_id, self._spec(node, True)) if reattach and node.job_id else None
            if handle is not None:
                self.rundir.log_event("reattached", node=node.id, job_id=node.job_id)
                self._watch(node, handle)
                continue
            own = prepare_for_start(self.rundir.node_dir(node.id), resume_own=True)
            self.rundir.log_event("recovered", node=node.id, from_step=own or 0)
            self._launch(node, resume_own=own is not None)

    def _poll_once(self) -> None:
        for act in list(self.active.values()):
            fresh = act.handle.poll()
            ended = act.handle.done()  # also brings the handle's state (queued/running) up to date
            self._note_state(act)
            if fresh:
                self._take_metrics(act, fresh)
                self._maybe_stop(act)
            if ended:
                self._take_metrics(act, act.handle.poll())  # what it wrote after the last poll
                result = act.handle.result()
                disk = disk_fault(result, self.rundir.node_dir(act.node.id))
                if disk is not None:  # the machine's fault, not the phase's: stop, and run it again on the rerun
                    raise disk
                self._complete(act, result)

    def _take_metrics(self, act: _Active, fresh: list[dict[str, Any]]) -> None:
        if fresh:
            act.metrics.extend(fresh)
            act.node.steps_done = act.metrics.last_step()
            act.node.best_val, act.node.best_step = act.metrics.best_val()
            self.observers.on_phase_metrics(self.view(), act.node, fresh)

    def _maybe_stop(self, act: _Active) -> None:
        decision = check_running(self.tree, self.rundir, act.node, act.metrics, self.schedule, self.agent,
                                 self.fallback, budget.iterations_left(self.tree, self.settings.search), self.curves)
        if decision is not None:
            act.node.cost = act.node.cost.add(decision.cost)
            if decision.stop:
                act.node.stop_reason = decision.reason
                act.handle.stop(decision.reason)
                self.save()

    def _complete(self, act: _Active, result: PhaseResult) -> None:
        """Backpropagate (the node takes in its result) and prune a fixed debug chain (§3.2)."""
        node = act.node
        incumbent = self.tree.best_node()  # before this node counts: what it was running against
        against = incumbent if (incumbent is not None and act.metrics.records
                                and self.schedule.overlay_at_end(self.agent.wants_images)) else None
        del self.active[node.id]
        self.schedule.forget(node.id)
        node.absorb(result, self.settings.cluster.gpus_per_phase)
        if result.status == NodeStatus.FAILED:
            write_text_atomic(self.rundir.node_dir(node.id) / "error.txt",
                              f"{result.error}\n\n--- log tail ---\n{result.log_tail}\n")
        draw = end_of_phase_plots(self.tree, self.rundir, node, act.metrics, against)
        if self.agent.wants_images:
            draw()  # the proposer of its children reads its metric grid
        else:
            self._plotter.submit(draw)
        lifted = self.tree.lift_fixed_debug(node.id) if node.validated else None
        if lifted is not None:
            self.rundir.log_event("debug_fixed", node=node.id, origin=lifted.id, new_parent=node.parent)
        settle_outcomes(self.tree, self.curves.of)  # this phase's decisions, and its stopped siblings'
        self.rundir.log_event("finished", node=node.id, status=node.status, best_val=node.best_val,
                              best_step=node.best_step, error=(node.error or "")[:500])
        self.save()
        self._write_recipe()
        self.observers.on_phase_end(self.view(), node)

    # ---- results -----------------------------------------------------------------------------
    def _write_recipe(self) -> dict[str, Any] | None:
        best = self.tree.best_node()
        if best is None:
            return None
        recipe = build_recipe(self.tree, best, self.meta, self.trainer.steps_per_epoch)
        write_yaml_atomic(self.rundir.recipe_file, recipe)
        return recipe

    def _finish(self, stop_reason: str) -> SearchResult:
        evaluate_final(self.tree, self.rundir, self.trainer, self.meta, self.root_hparams,
                       lambda text: self.observers.on_message(self.view(), text), self.executor)
        self.meta["stop_reason"] = stop_reason
        self.meta["finished_at"] = time.time()
        self.save()
        best = self.tree.best_node()
        result = SearchResult(self.tree, best, self.tree.strategy_path(best.id) if best else [], stop_reason,
                              self._write_recipe(), dict(self.meta.get("base_model", {})))
        self.observers.on_search_end(self.view(), result)
        return result

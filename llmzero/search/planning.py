"""Turning a selected action into a new phase: ask the agent, validate, build the node.

Lines 5-10 of Algorithm 1: error analyzer for a failed parent, proposer otherwise, then
CreateChild with the checkpoint step. Agent answers are validated before anything runs;
an invalid answer from a non-fallback agent is replaced by the fallback agent's and the
node records it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from ..agents.base import Agent, AgentGaveUp, ErrorContext, ErrorFix, Observation, Proposal, ProposalContext
from ..agents.llm.calls import CallLog
from ..agents.claims import check_observation
from ..agents.validation import PlanRules, ProposalError, ValidatedPlan, validate_fix, validate_proposal
from ..metrics.store import MetricSeries
from ..state.rundir import RunDir
from ..trainers.subprocess_phase import log_tail
from .node import Cost, Node, NodeKind
from .selection import Action, ActionKind
from .tree import Tree


@dataclass
class PlanningContext:
    tree: Tree
    rundir: RunDir
    rules: PlanRules
    agent: Agent
    fallback: Agent | None
    root_hparams: dict[str, Any]
    budget_left: int


class Unfixable(Exception):
    """The error analyzer gave up on a failed node; no phase is created this round."""


def plan_node(action: Action, ctx: PlanningContext) -> Node:
    tree = ctx.tree
    node_id = tree.new_id()
    if action.kind == ActionKind.ROOT:
        plan = ctx.rules.root(ctx.root_hparams)
        node = Node(id=node_id, parent=None, kind=NodeKind.ROOT, hparams=plan.hparams, max_steps=plan.max_steps,
                    diagnosis="default configuration θ0", agent="config")
        _record(ctx, node, {"action": "root", "hparams": plan.hparams}, {"max_steps": plan.max_steps})
        return node

    parent = tree[action.node]
    if action.kind == ActionKind.DEBUG:
        return _plan_debug(node_id, parent, action, ctx)

    scratch = action.kind == ActionKind.SCRATCH
    parent_dir = ctx.rundir.node_dir(parent.id)
    checkpoints = [] if scratch else list(parent.checkpoints)

    def check(p: Proposal) -> ValidatedPlan:
        return validate_proposal(p, parent_hparams=parent.hparams, parent_checkpoints=checkpoints,
                                 scratch=scratch, rules=ctx.rules)

    pctx = ProposalContext(
        parent=parent,
        parent_metrics=MetricSeries.load(parent_dir / "metrics.jsonl"),
        parent_checkpoints=checkpoints,
        path=tree.strategy_path(parent.id),
        best_val=best.best_val if (best := tree.best_node()) else None,
        space=ctx.rules.space,
        scratch=scratch,
        steps_per_epoch=ctx.rules.steps_per_epoch(parent.hparams),
        default_max_steps=parent.max_steps,
        max_steps_cap=ctx.rules.max_steps_cap,
        budget_left=ctx.budget_left,
        plots=[str(p) for p in [parent_dir / "metrics.png"] if p.is_file()],
        node_id=node_id,
        siblings=tree.children(parent.id),
        validate=check,
        calls=CallLog(ctx.rundir.node_dir(node_id)),
    )

    proposal, plan, cost, note = _ask(lambda a: a.propose(pctx), check, ctx)
    resume_from = None if plan.resume_step is None else parent.id
    node = Node(
        id=node_id,
        parent=parent.id,
        kind=NodeKind.SCRATCH if scratch else NodeKind.EVOLVE,
        hparams=plan.hparams,
        resume_step=plan.resume_step,
        resume_from=resume_from,
        global_offset=(parent.global_offset + plan.resume_step) if resume_from is not None else 0,
        max_steps=plan.max_steps,
        diagnosis=proposal.diagnosis,
        rationale=proposal.rationale,
        observations=_checked(proposal.observations, pctx.parent_metrics),
        changes={k: plan.hparams[k] for k in plan.hparams if plan.hparams[k] != parent.hparams.get(k)},
        agent=proposal.agent + note,
        cost=cost,
    )
    _record(ctx, node, {"action": action.kind, "parent": parent.id, "scratch": scratch,
                        "parent_checkpoints": pctx.parent_checkpoints, "selection_trace": action.trace},
            {**proposal.to_dict(), "observations": node.observations})  # with their claim checks
    return node


def _plan_debug(node_id: int, failed: Node, action: Action, ctx: PlanningContext) -> Node:
    fdir = ctx.rundir.node_dir(failed.id)

    def check(fix: ErrorFix) -> ValidatedPlan:
        if not fix.fixable:
            return ValidatedPlan(hparams=dict(failed.hparams), resume_step=None, max_steps=failed.max_steps)
        return validate_fix(fix, failed_hparams=failed.hparams, rules=ctx.rules)

    ectx = ErrorContext(
        node=failed, error=failed.error or "", log_tail=log_tail(fdir / "log.txt"), space=ctx.rules.space,
        metrics=MetricSeries.load(fdir / "metrics.jsonl"), history=_debug_history(ctx.tree, failed),
        validate=check, calls=CallLog(fdir),  # the analysis belongs to the failure, fixable or not
    )

    fix, plan, cost, note = _ask(lambda a: a.analyze_error(ectx), check, ctx)
    if not fix.fixable:
        failed.unfixable = True
        failed.cost = failed.cost.add(cost)
        ctx.rundir.log_event("unfixable", node=failed.id, diagnosis=fix.diagnosis)
        raise Unfixable(fix.diagnosis)
    node = Node(
        id=node_id,
        parent=failed.id,
        kind=NodeKind.DEBUG,
        hparams=plan.hparams,
        resume_step=failed.resume_step,
        resume_from=failed.resume_from,  # retry from the same starting point as the failed phase
        global_offset=failed.global_offset,
        max_steps=plan.max_steps,
        diagnosis=fix.diagnosis,
        rationale=fix.rationale,
        changes={k: plan.hparams[k] for k in plan.hparams if plan.hparams[k] != failed.hparams.get(k)},
        agent=fix.agent + note,
        debug_of=failed.id,
        cost=cost,
    )
    _record(ctx, node, {"action": "debug", "failed": failed.id, "error": failed.error,
                        "selection_trace": action.trace}, fix.to_dict())
    return node


def _debug_history(tree: Tree, failed: Node) -> list[Node]:
    """The failures of this debug chain, oldest first, so the analyzer does not repeat a fix that failed."""
    chain = [failed]
    while chain[-1].debug_of is not None and chain[-1].debug_of in tree.nodes:
        chain.append(tree[chain[-1].debug_of])
    return list(reversed(chain[1:]))


def _ask(call, check, ctx: PlanningContext):
    """Ask the agent; when it gives up or its answer is still invalid, ask the fallback agent and say so.

    LLM agents re-ask the model with the validation error themselves (ctx.validate); the check here
    is the search's own, applied to whoever answered.
    """
    cost = Cost()
    try:
        answer = call(ctx.agent)
        cost = cost.add(answer.cost)
        return answer, check(answer), cost, ""
    except (ProposalError, AgentGaveUp) as exc:
        if isinstance(exc, AgentGaveUp):
            cost = cost.add(exc.cost)
        if ctx.fallback is None or ctx.fallback is ctx.agent:
            if isinstance(exc, AgentGaveUp):
                raise ProposalError(str(exc)) from exc
            raise
        answer = call(ctx.fallback)
        cost = cost.add(answer.cost)
        why = "gave up" if isinstance(exc, AgentGaveUp) else "answered invalidly"
        return answer, check(answer), cost, f" (fallback: {ctx.agent.name} {why}: {exc})"


def _checked(observations: list[Any], metrics: MetricSeries) -> list[dict[str, Any]]:
    """Each observation with its claim check against the parent's metrics (supported/contradicted/unverifiable)."""
    out = []
    for o in observations:
        obs = o if isinstance(o, Observation) else Observation(**o)
        check = check_observation(obs, metrics)
        out.append({**asdict(obs), "check": check.verdict, "check_reason": check.reason})
    return out


def _record(ctx: PlanningContext, node: Node, inputs: dict[str, Any], output: dict[str, Any]) -> None:
    ctx.rundir.write_node_file(node.id, "proposal.json", {
        "node": node.id, "created_at": time.time(), "agent": node.agent, "input": inputs, "output": output,
    })

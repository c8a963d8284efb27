"""Turning a selected action into a new phase: ask the agent, validate, build the node.

Lines 5-10 of Algorithm 1: error analyzer for a failed parent, proposer otherwise, then
CreateChild with the checkpoint step. Agent answers are validated before anything runs;
an invalid answer from a non-fallback agent is replaced by the fallback agent's and the
node records it (llmzero.agents.fallback).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from ..agents.base import Agent, ErrorContext, ErrorFix, Observation, Proposal, ProposalContext
from ..agents.claims import check_observation
from ..agents.fallback import consult
from ..agents.validation import PlanRules, ValidatedPlan, validate_fix, validate_proposal
from ..metrics.store import MetricSeries
from ..state.phase_dir import LOG_FILE, METRICS_FILE, log_tail
from ..hparams.space import HParamSpace
from ..state.rundir import RunDir
from ..trainers.base import TrainerBackend
from ..tree import Node, NodeKind, Tree
from .selection import Action


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


class ScheduleEnded(Exception):
    """The planner's own agent ended the work (the skill-based agent's gather-results); the message says why."""


def plan_rules(space: HParamSpace, trainer: TrainerBackend, max_steps_cap: int) -> PlanRules:
    return PlanRules(space=space, steps_per_epoch=trainer.steps_per_epoch, max_steps_cap=max_steps_cap,
                     trainer_check=trainer.check)


def plan_node(action: Action, ctx: PlanningContext) -> Node:
    node_id = ctx.tree.new_id()
    if action.kind == NodeKind.ROOT:
        plan = ctx.rules.root(ctx.root_hparams)
        node = Node(id=node_id, parent=None, kind=NodeKind.ROOT, hparams=plan.hparams, max_steps=plan.max_steps,
                    diagnosis="default configuration θ0", agent="config")
        _record(ctx, node, {"action": "root", "hparams": plan.hparams}, {"max_steps": plan.max_steps})
        return node
    parent = ctx.tree[action.node]
    if action.kind == NodeKind.DEBUG:
        return _plan_debug(node_id, parent, action, ctx)
    return _plan_evolve(node_id, parent, action, ctx)


def _plan_evolve(node_id: int, parent: Node, action: Action, ctx: PlanningContext) -> Node:
    """An evolve child, or a from-scratch one (§3.3: the parent's checkpoints are withheld)."""
    scratch = action.kind == NodeKind.SCRATCH
    parent_dir = ctx.rundir.node_dir(parent.id)
    checkpoints = [] if scratch else list(parent.checkpoints)

    def check(p: Proposal) -> ValidatedPlan:
        return validate_proposal(p, parent_hparams=parent.hparams, parent_checkpoints=checkpoints,
                                 scratch=scratch, rules=ctx.rules)

    best = ctx.tree.best_node()
    pctx = ProposalContext(
        parent=parent,
        parent_metrics=MetricSeries.load(parent_dir / METRICS_FILE),
        parent_checkpoints=checkpoints,
        path=ctx.tree.strategy_path(parent.id),
        best_val=best.best_val if best else None,
        space=ctx.rules.space,
        scratch=scratch,
        steps_per_epoch=ctx.rules.steps_per_epoch(parent.hparams),
        default_max_steps=parent.max_steps,
        max_steps_cap=ctx.rules.max_steps_cap,
        budget_left=ctx.budget_left,
        plots=[str(p) for p in [parent_dir / "metrics.png"] if p.is_file()],
        node_id=node_id,
        siblings=ctx.tree.children(parent.id),
        validate=check,
        record_dir=ctx.rundir.node_dir(node_id),
    )
    if pctx.parent_metrics.damaged_lines:
        ctx.rundir.log_event("metrics_lines_skipped", node=parent.id, lines=pctx.parent_metrics.damaged_lines[:20],
                             kept=len(pctx.parent_metrics.records))
    got = consult(ctx.agent, ctx.fallback, lambda a: a.propose(pctx), check)
    proposal, plan = got.answer, got.checked
    resume_from = None if plan.resume_step is None else parent.id
    node = _child(node_id, parent, NodeKind.SCRATCH if scratch else NodeKind.EVOLVE, plan, proposal, got,
                  resume_from=resume_from, resume_step=plan.resume_step,
                  global_offset=(parent.global_offset + plan.resume_step) if resume_from is not None else 0,
                  observations=_checked(proposal.observations, pctx.parent_metrics))
    _record(ctx, node, {"action": action.kind, "parent": parent.id, "scratch": scratch,
                        "parent_checkpoints": pctx.parent_checkpoints, "selection_trace": action.trace},
            {**_answer_dict(proposal), "observations": node.observations})  # with their claim checks
    return node


def _plan_debug(node_id: int, failed: Node, action: Action, ctx: PlanningContext) -> Node:
    """A fix of a failed phase. Like the paper's Table 8 (node 2 "resumes from Node 1's checkpoint (Node 1 failed but
    produced a valid checkpoint)"), it resumes the failed phase's last complete checkpoint and runs the steps the
    phase had left; a phase that saved none is retried from where it started."""
    fdir = ctx.rundir.node_dir(failed.id)
    resume_step = max(failed.checkpoints) if failed.checkpoints else None
    steps_left = None if resume_step is None else max(1, failed.max_steps - resume_step)

    def check(fix: ErrorFix) -> ValidatedPlan:
        if not fix.fixable:
            return ValidatedPlan(hparams=dict(failed.hparams), resume_step=None, max_steps=failed.max_steps)
        return validate_fix(fix, failed_hparams=failed.hparams, rules=ctx.rules, steps_left=steps_left)

    ectx = ErrorContext(
        node=failed, error=failed.error or "", log_tail=log_tail(fdir / LOG_FILE), space=ctx.rules.space,
        metrics=MetricSeries.load(fdir / METRICS_FILE), history=ctx.tree.debug_history(failed),
        resume_step=resume_step, validate=check, record_dir=fdir,  # the analysis belongs to the failure
    )
    got = consult(ctx.agent, ctx.fallback, lambda a: a.analyze_error(ectx), check)
    fix = got.answer
    if not fix.fixable:
        failed.unfixable = True
        failed.cost = failed.cost.add(got.cost)
        ctx.rundir.log_event("unfixable", node=failed.id, diagnosis=fix.diagnosis)
        raise Unfixable(fix.diagnosis)
    if resume_step is not None:
        where = dict(resume_from=failed.id, resume_step=resume_step, global_offset=failed.global_offset + resume_step)
    else:
        where = dict(resume_from=failed.resume_from, resume_step=failed.resume_step, global_offset=failed.global_offset)
    node = _child(node_id, failed, NodeKind.DEBUG, got.checked, fix, got, debug_of=failed.id, **where)
    _record(ctx, node, {"action": "debug", "failed": failed.id, "error": failed.error,
                        "selection_trace": action.trace}, _answer_dict(fix))
    return node


def _child(node_id: int, parent: Node, kind: str, plan: ValidatedPlan, answer: Proposal | ErrorFix, got: Any,
           **where: Any) -> Node:
    """CreateChild (Algorithm 1): the validated plan, the agent's explanation, where the weights come from."""
    node = Node(id=node_id, parent=parent.id, kind=kind, hparams=plan.hparams, max_steps=plan.max_steps,
                diagnosis=_text(answer.diagnosis), rationale=_text(answer.rationale),
                agent=_text(answer.agent, 200) + got.note, cost=got.cost, **where)
    node.changes = node.changes_from(parent.hparams)
    return node


def _checked(observations: list[Any], metrics: MetricSeries) -> list[dict[str, Any]]:
    """Each observation with its claim check against the parent's metrics (supported/contradicted/unverifiable)."""
    out = []
    for o in observations if isinstance(observations, (list, tuple)) else [observations]:
        try:
            obs = o if isinstance(o, Observation) else Observation(**o)
            check = check_observation(obs, metrics)
        except Exception as exc:  # noqa: BLE001 - a malformed observation is recorded, never fatal
            out.append({"observation": repr(o)[:500], "check": "unverifiable",
                        "check_reason": f"malformed observation ({type(exc).__name__}: {exc})"[:500]})
            continue
        out.append({**asdict(obs), "check": check.verdict, "check_reason": check.reason})
    return out


def _text(value: Any, limit: int = 20_000) -> str:
    """An agent's free text, as it goes into tree.json: a string of bounded length whatever a plug-in returned."""
    out = value if isinstance(value, str) else ("" if value is None else repr(value))
    return out[:limit]


def _answer_dict(answer: Proposal | ErrorFix) -> dict[str, Any]:
    try:
        return answer.to_dict()
    except Exception:  # noqa: BLE001 - a plug-in's answer object need not copy; its record must still be written
        return {"unrecordable_answer": repr(answer)[:20_000]}


def _record(ctx: PlanningContext, node: Node, inputs: dict[str, Any], output: dict[str, Any]) -> None:
    ctx.rundir.write_node_file(node.id, "proposal.json", {
        "node": node.id, "created_at": time.time(), "agent": node.agent, "input": inputs, "output": output,
    })

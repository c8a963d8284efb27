"""Where the next phase comes from. The engine asks its planner for the next action and for the node it makes;
everything else (running, monitoring, the tree, the reports) is the same whoever plans:

- AdaptivePlanner: the search itself, UCT selection (eqs. 5-8) and the agents (Algorithm 1, lines 3-10); with
  search.ablation=no_multistage every child trains from scratch (paper Table 2).
- FixedPlanner: a schedule known in advance, with no agent: a recipe replayed as a chain, each phase resuming
  from the last step of the one before (§4.6), or static trials (grid, random), each a one-phase strategy
  trained from scratch (Appendix B.2).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from ..config.schema import Ablation, SearchConfig
from ..strategy.replay import FixedPhase
from ..tree import Node, NodeKind, NodeStatus, Tree
from .phase_rules import PlanningContext, plan_node
from .selection import Action, select


class Planner(Protocol):
    name: str

    def next_action(self, tree: Tree) -> Action | None:
        """The next phase to create, or None when none can start now (phases in flight) or ever."""

    def plan(self, action: Action, ctx: PlanningContext) -> Node:
        """The validated node for `action` (raises ProposalError, AgentGaveUp or Unfixable like plan_node)."""

    def done_reason(self, tree: Tree) -> str:
        """Why the search ends when next_action has nothing left and no phase is in flight."""


class AdaptivePlanner:
    name = "adaptive"

    def __init__(self, search: SearchConfig) -> None:
        self.search = search

    def next_action(self, tree: Tree) -> Action | None:
        s = self.search
        action = select(tree, s.limits, s.uct, s.rho_min)
        if action is not None and action.kind == NodeKind.EVOLVE and s.ablation == Ablation.no_multistage:
            # The proposer still reads the selected parent's run, but the child starts from the base model.
            action = dataclasses.replace(action, kind=NodeKind.SCRATCH,
                                         trace=[*action.trace, {"ablation": "no_multistage"}])
        return action

    def plan(self, action: Action, ctx: PlanningContext) -> Node:
        return plan_node(action, ctx)

    def done_reason(self, tree: Tree) -> str:
        return "every subtree is terminal"


class FixedPlanner:
    """Phases known in advance. `chain`: phase i+1 resumes from phase i's last checkpoint (a recipe); otherwise each
    phase trains from scratch (static trials: the first is the root, the others its from-scratch children)."""

    def __init__(self, phases: list[FixedPhase], *, chain: bool, name: str, agent_label: str) -> None:
        if not phases:
            raise ValueError("a fixed schedule needs at least one phase")
        self.phases, self.chain, self.name, self.agent_label = list(phases), chain, name, agent_label

    def _done(self, tree: Tree) -> list[Node]:
        return [n for n in tree if not n.pruned]

    def next_action(self, tree: Tree) -> Action | None:
        made = self._done(tree)
        if len(made) >= len(self.phases):
            return None
        if not made:
            return Action(NodeKind.ROOT, None, [{"schedule": self.name, "phase": 1}])
        trace = [{"schedule": self.name, "phase": len(made) + 1}]
        if not self.chain:
            return Action(NodeKind.SCRATCH, made[0].id, trace)
        last = made[-1]
        if last.status in NodeStatus.IN_FLIGHT or not last.checkpoints or last.status == NodeStatus.FAILED:
            return None  # wait for it; a failed link ends the chain
        return Action(NodeKind.EVOLVE, last.id, trace)

    def plan(self, action: Action, ctx: PlanningContext) -> Node:
        index = len(self._done(ctx.tree))
        phase = self.phases[index]
        parent = ctx.tree[action.node] if action.node is not None else None
        resume = max(parent.checkpoints) if (parent is not None and action.kind == NodeKind.EVOLVE) else None
        plan = ctx.rules.finish(dict(phase.hparams), phase.steps, resume, f"{self.name} phase {index + 1}: ")
        node = Node(id=ctx.tree.new_id(), parent=parent.id if parent else None, kind=action.kind,
                    hparams=plan.hparams, max_steps=plan.max_steps, diagnosis=phase.label, agent=self.agent_label,
                    resume_from=parent.id if resume is not None else None, resume_step=resume,
                    global_offset=(parent.global_offset + resume) if (parent is not None and resume is not None) else 0)
        if parent is not None:
            node.changes = node.changes_from(parent.hparams)
        return node

    def done_reason(self, tree: Tree) -> str:
        made = self._done(tree)
        failed = [n for n in made if n.status == NodeStatus.FAILED]
        if self.chain and failed:
            return f"{self.name}: phase {len(made)} of {len(self.phases)} failed; the schedule cannot go on"
        return f"{self.name}: all {len(made)} phases run"

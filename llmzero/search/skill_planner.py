"""The planner of the skill-based LLM agent baseline (paper §4.1, Appendix B.7): no UCT, no debug chains, no
forced scratch; the agent itself picks each job's starting point (the base model or any checkpoint of any job),
one job at a time, and decides when the work is done (`sweeper.mode=skill_agent`)."""

from __future__ import annotations

from ..agents.llm.skill_agent import JobPlan, SkillAgent, SkillContext, metrics_reader
from ..tree import Node, NodeKind, NodeStatus, Tree
from .phase_rules import PlanningContext, ScheduleEnded
from .selection import Action


class SkillPlanner:
    name = "skill_agent"

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.ended: str | None = None

    def next_action(self, tree: Tree) -> Action | None:
        if self.ended or any(n.status in NodeStatus.IN_FLIGHT for n in tree):
            return None  # one job at a time: the agent plans the next from the last one's outcome
        return Action(NodeKind.ROOT if tree.root() is None else NodeKind.EVOLVE, None, [{"skill_agent": "plan"}])

    def plan(self, action: Action, ctx: PlanningContext) -> Node:
        agent = ctx.agent
        if not isinstance(agent, SkillAgent):
            raise TypeError("sweeper.mode=skill_agent plans with a SkillAgent (app.run_search wraps the LLM agent)")
        node_id = ctx.tree.new_id()
        job = agent.plan(SkillContext(tree=ctx.tree, rules=ctx.rules, theta0=ctx.root_hparams, budget=self.budget,
                                      metrics_of=metrics_reader(ctx.rundir.node_dir),
                                      record_dir=ctx.rundir.root / "skill_agent" / "calls"))
        if job.finish:
            self._charge_last(ctx.tree, job)
            self.ended = f"the skill agent gathered the results: {job.reason}"[:300]
            ctx.rundir.log_event("skill_agent_done", reason=job.reason, verdicts=job.verdicts, usd=job.cost.agent_usd)
            raise ScheduleEnded(self.ended)
        return self._node(node_id, job, ctx.tree)

    def _node(self, node_id: int, job: JobPlan, tree: Tree) -> Node:
        assert job.plan is not None
        root = tree.root()
        if root is None:
            kind, parent = NodeKind.ROOT, None
        elif job.resume_node is None:
            kind, parent = NodeKind.SCRATCH, root.id  # a restart hangs under the first job, as static trials do
        else:
            kind, parent = NodeKind.EVOLVE, job.resume_node
        source = tree[job.resume_node] if job.resume_node is not None else None
        step = job.plan.resume_step
        node = Node(id=node_id, parent=parent, kind=kind, hparams=job.plan.hparams, max_steps=job.plan.max_steps,
                    diagnosis=(job.diagnosis or job.reason)[:2000], rationale=job.reason[:2000], agent="skill agent",
                    cost=job.cost, resume_from=source.id if source is not None else None, resume_step=step,
                    global_offset=(source.global_offset + step) if source is not None and step is not None else 0)
        node.changes = node.changes_from(job.base_hparams)
        return node

    @staticmethod
    def _charge_last(tree: Tree, job: JobPlan) -> None:
        """The call that ended the work is charged to the last job, so the total cost stays in the tree."""
        nodes = list(tree)
        if nodes:
            last = max(nodes, key=lambda n: n.id)
            last.cost = last.cost.add(job.cost)

    def done_reason(self, tree: Tree) -> str:
        return self.ended or "the skill agent's jobs are done"

"""The skill-based LLM agent, the paper's agentic baseline (§4.1; Appendix B.2 and B.7).

One LLM plans every iteration itself through skills (B.7's eight; data, reward, model and pre-flight are fixed by
the framework, as §3.6 fixes them for every method): it writes each job's configuration, submits it from the base
model or from any checkpoint of any earlier job, checks running jobs at intervals with a per-hyperparameter
KEEP/INCREASE/DECREASE verdict and may stop them, and ends the work when it sees fit. Unlike LLMZero it keeps the
whole conversation (every call resends it: the cost B.4 compares), sees numbers only (no plots), and has no tree
search. It runs on the same clients (agent=claude, agent=litellm), trainers and executors; the cost of each call
is charged to the job it planned or checked, so the report's per-iteration cost is comparable with LLMZero's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from ...atomic import read_json, write_json_atomic
from ...hparams.space import HParamSpace
from ...metrics.store import MetricSeries
from ...state.phase_dir import METRICS_FILE
from ...tree import Cost, Node, Tree
from ..base import AgentBase, Proposal, StopContext, StopDecision
from ..validation import PlanRules, ValidatedPlan, validate_proposal
from . import render
from .agent import LLMAgent
from .answers import AnswerError, Scalar, _Strict, parse_as
from .client import Turn
from .prompts import RenderedPrompt, _fill

Verdict = Literal["KEEP", "INCREASE", "DECREASE"]
CONVERSATION_FILE = "conversation.json"


class PlanAnswer(_Strict):
    skill: Literal["submit-training", "gather-results"]
    diagnosis: str = Field(default="", description="what the last job's metrics show (check-training's analysis)")
    verdicts: dict[str, Verdict] = Field(default_factory=dict, description="hyperparameter -> KEEP/INCREASE/DECREASE")
    resume_node: Optional[int] = Field(default=None, description="job to resume from; null = from the base model")
    resume_step: Optional[int] = Field(default=None, description="checkpoint step of that job")
    changes: dict[str, Scalar] = Field(default_factory=dict, description="hyperparameter -> new value")
    epochs: Optional[float] = Field(default=None, description="epoch budget of the job")
    max_steps: Optional[int] = Field(default=None, description="job length in optimiser steps (overrides epochs)")
    rationale: str = Field(default="", description="why this job, or why gather the results now")


class CheckAnswer(_Strict):
    decision: Literal["CONTINUE", "STOP"]
    verdicts: dict[str, Verdict] = Field(default_factory=dict, description="hyperparameter -> KEEP/INCREASE/DECREASE")
    reason: str = Field(description="the diagnosis behind the decision")


@dataclass
class SkillContext:
    """What the agent is shown when it plans a job: the jobs so far, the rules a job must satisfy."""

    tree: Tree
    rules: PlanRules
    theta0: dict[str, Any]
    budget: int
    metrics_of: Any  # node id -> MetricSeries of that job
    record_dir: Path | None = None


@dataclass
class JobPlan:
    """The agent's decision: a validated job (from `resume_node`'s checkpoint, or from scratch), or the end."""

    finish: bool
    reason: str
    plan: ValidatedPlan | None = None
    resume_node: int | None = None
    base_hparams: dict[str, Any] = field(default_factory=dict)
    diagnosis: str = ""
    verdicts: dict[str, str] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)


def _verdicts_known(verdicts: dict[str, str], space: HParamSpace) -> None:
    unknown = sorted(set(verdicts) - set(space.specs))
    if unknown:
        raise AnswerError(f"verdicts name {unknown}, which are not hyperparameters (allowed: {sorted(space.specs)})")


class SkillAgent(AgentBase):
    """The baseline over an LLMAgent's client and settings; its conversation lives in `directory` across resumes."""

    wants_images = False  # B.7: "It analyzes only numerical metrics (no visual training curves)"
    checks_alone = True  # it checks its running job with or without an earlier one to compare against

    def __init__(self, llm: LLMAgent, directory: Path) -> None:
        self.llm, self.name = llm, f"skill-{llm.name}"
        self.dir = Path(directory)
        self.templates = llm.prompts.load("skill_agent.yaml")
        saved = read_json(self.dir / CONVERSATION_FILE) if (self.dir / CONVERSATION_FILE).is_file() else []
        self.history = [Turn(t["role"], t["text"]) for t in saved]
        self._system: str | None = None

    # ---- prompts --------------------------------------------------------------------------------
    def _static(self, space: HParamSpace, theta0: dict[str, Any], budget: int) -> str:
        if self._system is None:
            book = self.llm.prompts
            self._system = _fill(
                self.templates["system"], "skill_agent.yaml:system", budget=budget,
                metric_descriptions=render.metric_descriptions_text(book.metric_descriptions),
                hparam_descriptions=render.hparam_descriptions_text(book.hparam_descriptions, space),
                space=render.space_text(space), theta0=render.config_yaml(theta0),
                plan_schema=PlanAnswer.model_json_schema(), check_schema=CheckAnswer.model_json_schema())
        return self._system

    def _talk(self, role: str, user: str, accept: Any, record_dir: Path | None) -> Any:
        assert self._system is not None, "plan() sets the system prompt before any check"
        prompt = RenderedPrompt(role, self._system, "", user, [])
        try:
            return self.llm._converse(prompt, accept, record_dir, history=self.history,
                                      retry=lambda error: _fill(self.templates["retry"], "skill_agent.yaml:retry",
                                                                error=error))
        finally:  # the conversation so far survives a crash or an interrupted search
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.dir / CONVERSATION_FILE, [{"role": t.role, "text": t.text} for t in self.history])

    # ---- skills ---------------------------------------------------------------------------------
    def plan(self, ctx: SkillContext) -> JobPlan:
        """generate-config + submit-training, or gather-results."""
        space = ctx.rules.space
        self._static(space, ctx.theta0, ctx.budget)
        jobs = list(ctx.tree)
        last = max(jobs, key=lambda n: n.id) if jobs else None
        last_text = "No job has run yet."
        if last is not None:
            last_text = (f"## The last job: {last.id} ({last.status})\n{render.outcome(last)}; checkpoints at steps "
                         f"{sorted(last.checkpoints) or 'none'}\n\n### Its metrics\n"
                         f"{render.summaries_text(ctx.metrics_of(last.id))}")
        batch = (last.hparams if last else ctx.theta0).get("batch_size", "n/a")
        user = _fill(self.templates["plan"], "skill_agent.yaml:plan", job=len(jobs) + 1, budget=ctx.budget,
                     last_job=last_text, jobs="\n".join(_job_line(n) for n in jobs) or "(none)",
                     steps_per_epoch=ctx.rules.steps_per_epoch(last.hparams if last else ctx.theta0),
                     batch_size=batch, max_steps_cap=ctx.rules.max_steps_cap)

        def accept(text: str) -> JobPlan:
            answer = parse_as(PlanAnswer, text)
            _verdicts_known(answer.verdicts, space)
            if answer.skill == "gather-results":
                return JobPlan(True, answer.rationale or answer.diagnosis or "the agent gathered the results",
                               diagnosis=answer.diagnosis, verdicts=dict(answer.verdicts))
            source = None
            if answer.resume_node is not None:
                source = next((n for n in jobs if n.id == answer.resume_node), None)
                if source is None:
                    raise AnswerError(f"resume_node={answer.resume_node} is not a job (jobs: {[n.id for n in jobs]})")
            base = dict(source.hparams) if source is not None else dict(ctx.theta0)
            changes = dict(answer.changes)
            if answer.epochs is not None:
                changes.setdefault("epochs", answer.epochs)
            resume = answer.resume_step
            if source is not None and resume is None:  # "resume from job k": its last checkpoint
                if not source.checkpoints:
                    raise AnswerError(f"job {source.id} saved no checkpoint to resume from; start from scratch "
                                      f"(resume_node null) or name another job")
                resume = max(source.checkpoints)
            proposal = Proposal(changes=changes, diagnosis=answer.diagnosis, rationale=answer.rationale,
                                resume_step=resume if source is not None else None,
                                max_steps=answer.max_steps, epochs=answer.epochs, agent=self.name)
            if source is None and answer.resume_step is not None:
                raise AnswerError("resume_step is set but resume_node is null: name the job to resume from")
            plan = validate_proposal(proposal, parent_hparams=base,
                                     parent_checkpoints=list(source.checkpoints) if source else [],
                                     scratch=source is None, rules=ctx.rules)
            return JobPlan(False, answer.rationale, plan, source.id if source else None, base, answer.diagnosis,
                           dict(answer.verdicts))

        return self._talk("planner", user, accept, ctx.record_dir)

    def should_stop(self, ctx: StopContext) -> StopDecision:
        """check-training: CONTINUE or STOP, with a verdict per hyperparameter."""
        node = ctx.node
        user = _fill(self.templates["check"], "skill_agent.yaml:check", node_id=node.id,
                     step=ctx.metrics.last_step(), max_steps=node.max_steps, steps_left=ctx.steps_left,
                     changes=", ".join(f"{k}={render.fmt(v)}" for k, v in node.changes.items()) or "none",
                     summaries=render.summaries_text(ctx.metrics),
                     best_val=render.fmt(ctx.incumbent.best_val) if ctx.incumbent else "none yet")

        def accept(text: str) -> StopDecision:
            answer = parse_as(CheckAnswer, text)
            verdicts = ", ".join(f"{k} {v}" for k, v in answer.verdicts.items())
            return StopDecision(answer.decision == "STOP", f"{answer.decision}: {answer.reason}"
                                + (f" [{verdicts}]" if verdicts else ""))

        return self._talk("checker", user, accept, ctx.record_dir)

    def analyze_error(self, ctx: Any) -> Any:
        raise NotImplementedError("the skill agent reads a failed job when it plans the next one; it is not asked "
                                  "to debug it (no debug children)")

    def propose(self, ctx: Any) -> Any:
        raise NotImplementedError("the skill agent plans jobs with plan(); it has no proposer role")


def _job_line(node: Node) -> str:
    return render.node_line(node) + f"; checkpoints {sorted(node.checkpoints) or 'none'}"


def metrics_reader(node_dir: Any) -> Any:
    """node id -> that job's MetricSeries, read from its directory (`node_dir(id)` gives the directory)."""
    return lambda node_id: MetricSeries.load(node_dir(node_id) / METRICS_FILE)


__all__ = ["CheckAnswer", "JobPlan", "PlanAnswer", "SkillAgent", "SkillContext", "metrics_reader"]

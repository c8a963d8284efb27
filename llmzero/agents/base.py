"""Agent interface: the three roles of the paper (proposer §3.4, early stopper §3.5, error analyzer D.1).

An agent is any class named by `agent._target_`; Hydra instantiates it with the rest of the
`agent` config. It implements:

    name: str
    wants_images: bool
        whether the agent reads plots: the search then draws an overlay at every stop check
        (a multimodal LLM) rather than one per phase for the report. AgentBase says False.
    propose(ctx: ProposalContext) -> Proposal
        diagnose the parent phase and propose the child's changes, resume step and length.
        For a from-scratch child ctx.scratch is true and ctx.parent_checkpoints is empty:
        checkpoint information is withheld (§3.3) and resume_step must be None.
    should_stop(ctx: StopContext) -> StopDecision
        CONTINUE (stop=False) or STOP for the running phase against the incumbent.
    analyze_error(ctx: ErrorContext) -> ErrorFix
        a fix for a failed phase, or fixable=False.

Every answer carries its own cost (tokens, dollars) so the tree can account for it. Answers
are validated by llmzero.agents.validation before anything runs. Each context names a
`record_dir`, the node directory where an agent may keep its own records of the decision
(the LLM agents write agent_calls/ there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from ..hparams.space import HParamSpace
from ..metrics.stop_evidence import StopEvidence
from ..metrics.store import MetricSeries
from ..tree import Cost, Node


@dataclass
class Observation:
    """A claim about a named metric over a step range, checkable against the metrics store."""

    metric: str
    claim: str
    start_step: int | None = None
    end_step: int | None = None


@dataclass
class Proposal:
    changes: dict[str, Any]
    diagnosis: str
    rationale: str
    observations: list[Observation] = field(default_factory=list)
    resume_step: int | None = None  # step of the parent's checkpoint; None = from scratch
    max_steps: int | None = None  # phase length in optimiser steps
    epochs: float | None = None  # the epoch budget max_steps was derived from, when given that way
    cost: Cost = field(default_factory=Cost)
    agent: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StopDecision:
    stop: bool
    reason: str
    cost: Cost = field(default_factory=Cost)


@dataclass
class ErrorFix:
    fixable: bool
    diagnosis: str
    changes: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    max_steps: int | None = None
    cost: Cost = field(default_factory=Cost)
    agent: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProposalContext:
    parent: Node | None  # None only for the root (the default configuration is used as is)
    parent_metrics: MetricSeries
    parent_checkpoints: list[int]  # empty when withheld for a from-scratch child
    path: list[Node]  # the scratch-to-leaf path ending at the parent: earlier transitions and outcomes
    best_val: float | None  # best validation score in the whole tree so far
    space: HParamSpace
    scratch: bool
    steps_per_epoch: int
    default_max_steps: int
    max_steps_cap: int
    budget_left: int  # iterations left after this one
    plots: list[str] = field(default_factory=list)  # PNG paths of the parent's curves, for multimodal agents
    node_id: int = -1  # id the proposed phase will get
    siblings: list[Node] = field(default_factory=list)  # the parent's existing children: what was tried from here
    # The search's own check of an answer (raises ProposalError with a message for the model), so an
    # agent that can be re-asked hears why; the search checks again whatever the agent does.
    validate: Callable[[Proposal], Any] | None = None
    record_dir: Path | None = None  # the directory of the node being proposed


@dataclass
class StopContext:
    node: Node
    metrics: MetricSeries
    incumbent: Node | None  # best completed phase (its path is the strategy to beat)
    incumbent_metrics: MetricSeries | None
    steps_left: int
    budget_left: int
    plots: list[str] = field(default_factory=list)  # overlay PNGs: running phase (blue) vs incumbent (green)
    record_dir: Path | None = None  # the running node's directory
    evidence: StopEvidence | None = None  # what the stopper weighs (metrics/stop_evidence.py)


@dataclass
class ErrorContext:
    node: Node
    error: str
    log_tail: str
    space: HParamSpace
    metrics: MetricSeries
    history: list[Node] = field(default_factory=list)  # earlier failures of this debug chain, oldest first
    # Where the fix will start: the failed phase's last complete checkpoint (paper Table 8), or None when it
    # saved none and the fix restarts from where the failed phase started.
    resume_step: int | None = None
    validate: Callable[[ErrorFix], Any] | None = None
    record_dir: Path | None = None  # the failed node's directory: the analysis belongs to the failure


class AgentGaveUp(Exception):
    """An agent could not produce a valid answer (bad replies after its re-asks, or its provider failed);
    the search asks the fallback agent instead. Carries what the failed attempts cost."""

    def __init__(self, message: str, cost: Cost | None = None):
        super().__init__(message)
        self.cost = cost or Cost()


class AgentUnavailable(RuntimeError):
    """The provider failed and the agent is configured to stop the search rather than fall back."""


@runtime_checkable
class Agent(Protocol):
    name: str
    wants_images: bool

    def propose(self, ctx: ProposalContext) -> Proposal: ...

    def should_stop(self, ctx: StopContext) -> StopDecision: ...

    def analyze_error(self, ctx: ErrorContext) -> ErrorFix: ...


class AgentBase:
    """Defaults for the optional parts of the Agent protocol; subclass it or declare them yourself."""

    name: str = "agent"
    wants_images: bool = False


AGENT_METHODS = ("propose", "should_stop", "analyze_error")
AGENT_DEFAULTS = {"name": AgentBase.name, "wants_images": AgentBase.wants_images}


def interface_problems(agent: Any, target: str) -> list[str]:
    """What a plug-in agent lacks, checked once before the search: a missing method is named; a missing optional
    attribute is given its default (AgentBase's), so a class that does not subclass AgentBase still runs."""
    missing = [m for m in AGENT_METHODS if not callable(getattr(agent, m, None))]
    if missing:
        return [f"agent._target_={target} has no {', '.join(m + '()' for m in missing)}: an agent implements "
                f"{', '.join(m + '()' for m in AGENT_METHODS)} (llmzero/agents/base.py; subclass AgentBase)"]
    for attr, default in AGENT_DEFAULTS.items():
        if not hasattr(agent, attr):
            try:
                setattr(agent, attr, default)
            except AttributeError:  # __slots__ without room for it
                return [f"agent._target_={target} has no {attr} and cannot be given one: declare {attr} on the class"]
    return []

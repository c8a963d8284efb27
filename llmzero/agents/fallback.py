"""Asking an agent with a fallback: one rule for the three roles.

The configured agent answers; when it gives up (AgentGaveUp), its answer fails the search's own
check, or it raises anything else (a plug-in agent's bug, a value no check foresaw), the fallback
agent (the offline heuristic) answers instead and the answer says why. Costs of every attempt are
kept. With no separate fallback, the failure is raised as AgentGaveUp carrying its cost, and each
caller decides what no answer means for it. AgentUnavailable (agent.on_failure=error) is the one
failure meant to stop the search, and passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ..hparams.space import HParamError
from ..tree import Cost
from .base import Agent, AgentGaveUp, AgentUnavailable

A = TypeVar("A")


@dataclass
class Consulted(Generic[A]):
    answer: A
    checked: Any  # what check() returned for the answer (a ValidatedPlan), or None
    cost: Cost  # every attempt, failed ones included
    note: str = ""  # " (fallback: <agent> <why>)" when the fallback answered


def consult(primary: Agent, fallback: Agent | None, ask: Callable[[Agent], A],
            check: Callable[[A], Any] | None = None) -> Consulted[A]:
    cost = Cost()
    try:
        answer = ask(primary)
        cost = cost.add(getattr(answer, "cost", None) or Cost())
        return Consulted(answer, check(answer) if check else None, cost)
    except AgentUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the agent did, the fallback answers
        if isinstance(exc, AgentGaveUp):
            cost = cost.add(exc.cost)
            why = "gave up"
        elif isinstance(exc, HParamError):  # ProposalError included: outside the schema or the rules
            why = "answered invalidly"
        else:
            why, exc = "failed", RuntimeError(f"{type(exc).__name__}: {exc}")
        if fallback is None or fallback is primary:
            raise AgentGaveUp(str(exc), cost) from exc
        answer = ask(fallback)
        cost = cost.add(answer.cost)
        return Consulted(answer, check(answer) if check else None, cost, f" (fallback: {primary.name} {why}: {exc})")

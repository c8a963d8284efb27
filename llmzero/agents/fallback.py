"""Asking an agent with a fallback: one rule for the three roles.

The configured agent answers; when it gives up (AgentGaveUp) or its answer fails the search's own
check (ProposalError), the fallback agent (the offline heuristic) answers instead and the answer
says so. Costs of every attempt are kept. With no separate fallback, the failure is raised as
AgentGaveUp carrying its cost, and each caller decides what no answer means for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ..tree import Cost
from .base import Agent, AgentGaveUp
from .validation import ProposalError

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
        cost = cost.add(answer.cost)
        return Consulted(answer, check(answer) if check else None, cost)
    except (ProposalError, AgentGaveUp) as exc:
        if isinstance(exc, AgentGaveUp):
            cost = cost.add(exc.cost)
        if fallback is None or fallback is primary:
            raise AgentGaveUp(str(exc), cost) from exc
        why = "gave up" if isinstance(exc, AgentGaveUp) else "answered invalidly"
        answer = ask(fallback)
        cost = cost.add(answer.cost)
        return Consulted(answer, check(answer) if check else None, cost, f" (fallback: {primary.name} {why}: {exc})")

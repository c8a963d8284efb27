"""Everything that watches a search (the live display, W&B, the report, later the sweeper's summary)
listens through one interface, in the manner of transformers' TrainerCallback / CallbackHandler.

An observer receives events with a read-only `SearchView`; every method is a no-op by default,
so an observer implements only what it needs. Observers never steer the search, and one that
raises is logged and skipped: watching must never stop a search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..metrics.store import MetricSeries
from ..tree import Node, Tree
from .result import SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningPhase:
    node: Node
    metrics: MetricSeries
    state: str = "running"  # or "queued": launched, waiting for the executor's scheduler (Ray) to start it


@dataclass(frozen=True)
class SearchView:
    """What an observer may read at an event: the tree, the phases running, the budget used."""

    search_dir: Path
    tree: Tree
    running: tuple[RunningPhase, ...]
    budget: int
    gpu_hours: float
    max_gpu_hours: float | None
    agent_usd: float
    max_agent_usd: float | None

    @property
    def best(self) -> Node | None:
        return self.tree.best_node()


class SearchObserver:
    """Subclass and override the events you need."""

    def on_search_start(self, view: SearchView) -> None:
        pass

    def on_phase_start(self, view: SearchView, node: Node) -> None:
        pass

    def on_phase_metrics(self, view: SearchView, node: Node, records: list[dict[str, Any]]) -> None:
        """New metric records of a running phase (node.steps_done and best_val are up to date)."""

    def on_phase_state(self, view: SearchView, node: Node, state: str) -> None:
        """A launched phase is now "queued" (its scheduler holds it: no free GPUs, a runtime env building) or
        "running"; a phase that starts at once sends no event."""

    def on_phase_end(self, view: SearchView, node: Node) -> None:
        """A phase finished (completed, early-stopped or failed), or a proposal was rejected."""

    def on_message(self, view: SearchView, text: str) -> None:
        """Long work the user should know about (final evaluations, writing the report)."""

    def on_search_end(self, view: SearchView, result: SearchResult) -> None:
        pass

    def on_search_abort(self, view: SearchView) -> None:
        """The search stopped on an exception or an interrupt; its state is saved."""


class Observers(SearchObserver):
    """Calls every observer in order; the order matters where one reads what another wrote (plots, report)."""

    def __init__(self, observers: Sequence[SearchObserver] = ()) -> None:
        self.observers = list(observers)

    def _each(self, event: str, *args: Any) -> None:
        for obs in self.observers:
            try:
                getattr(obs, event)(*args)
            except Exception as exc:  # noqa: BLE001 - an observer must never stop the search
                log.warning("%s.%s failed: %s: %s", type(obs).__name__, event, type(exc).__name__, exc)

    def on_search_start(self, view: SearchView) -> None:
        self._each("on_search_start", view)

    def on_phase_start(self, view: SearchView, node: Node) -> None:
        self._each("on_phase_start", view, node)

    def on_phase_metrics(self, view: SearchView, node: Node, records: list[dict[str, Any]]) -> None:
        self._each("on_phase_metrics", view, node, records)

    def on_phase_state(self, view: SearchView, node: Node, state: str) -> None:
        self._each("on_phase_state", view, node, state)

    def on_phase_end(self, view: SearchView, node: Node) -> None:
        self._each("on_phase_end", view, node)

    def on_message(self, view: SearchView, text: str) -> None:
        self._each("on_message", view, text)

    def on_search_end(self, view: SearchView, result: SearchResult) -> None:
        self._each("on_search_end", view, result)

    def on_search_abort(self, view: SearchView) -> None:
        self._each("on_search_abort", view)

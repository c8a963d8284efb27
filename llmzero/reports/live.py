"""Progress while a search runs: a live rich view on a terminal, plain lines elsewhere (CI, logs)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..metrics import names
from ..metrics.store import MetricSeries
from ..search.node import Node
from .tables import fmt_score, tree_view


class PlainDisplay:
    """One line per event; used when stdout is not a terminal or search.display=false."""

    def __init__(self, console: Console | None = None, every_s: float = 5.0):
        self.console = console or Console(highlight=False)
        self.every_s = every_s
        self._last: dict[int, float] = {}

    def start(self, engine: Any) -> None:
        t = engine.tree
        self.console.print(f"search: {engine.rundir.root} — iteration {t.iteration}/{engine.s.budget}, "
                           f"{len(t)} nodes so far")

    def phase_started(self, engine: Any, node: Node) -> None:
        src = "scratch" if node.resume_from is None else f"#{node.resume_from} step {node.resume_step}"
        self.console.print(f"[{engine.tree.iteration}/{engine.s.budget}] ▶ node {node.id} ({node.kind}, from {src}, "
                           f"{node.max_steps} steps) {node.diagnosis[:120]}")

    def progress(self, engine: Any, node: Node, metrics: MetricSeries) -> None:
        now = time.monotonic()
        if now - self._last.get(node.id, 0.0) < self.every_s:
            return
        self._last[node.id] = now
        self.console.print(f"    node {node.id}: step {node.steps_done}/{node.max_steps}, best val {fmt_score(node.best_val)}")

    def phase_finished(self, engine: Any, node: Node) -> None:
        extra = ""
        if node.status == "early_stopped" and node.stop_reason:
            extra = f" — {node.stop_reason[:160]}"
        elif node.error:
            extra = f" — {node.error.splitlines()[0][:160]}"
        self.console.print(f"    node {node.id} {node.status}: best val {fmt_score(node.best_val)} at step "
                           f"{node.best_step}{extra}")

    def message(self, text: str) -> None:
        self.console.print(text)

    def finish(self, engine: Any, result: Any) -> None:
        pass

    def abort(self, engine: Any) -> None:
        pass


class RichDisplay(PlainDisplay):
    """Live tree with statuses, the running phase's step and val score, and the budget used."""

    def __init__(self, console: Console | None = None):
        super().__init__(console)
        self._live: Live | None = None
        self._engine: Any = None

    def _render(self) -> Group:
        e = self._engine
        parts: list[Any] = [tree_view(e.tree, title=f"LLMZero search — {e.rundir.root}")]
        for act in e.active.values():
            n = act.node
            frac = n.steps_done / max(1, n.max_steps)
            bar = "█" * int(frac * 30) + "░" * (30 - int(frac * 30))
            last = act.metrics.records[-1] if act.metrics.records else {}
            parts.append(Text(f"node {n.id}: {bar} {n.steps_done}/{n.max_steps}  best val {fmt_score(n.best_val)}  "
                              f"reward {last.get(names.REWARD_MEAN, float('nan')):.3f}  kl {last.get(names.KL, float('nan')):.4f}",
                              style="cyan"))
        budget = f"iterations {e.tree.iteration}/{e.s.budget}"
        if e.s.max_gpu_hours is not None:
            budget += f"   GPU-h {e.gpu_hours():.2f}/{e.s.max_gpu_hours}"
        if e.s.max_agent_usd is not None:
            budget += f"   agent ${e.agent_usd():.2f}/{e.s.max_agent_usd}"
        best = e.tree.best_node()
        budget += f"   best val {fmt_score(best.best_val if best else None)}"
        parts.append(Panel(Text(budget), title="budget", expand=False))
        return Group(*parts)

    def start(self, engine: Any) -> None:
        self._engine = engine
        self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def phase_started(self, engine: Any, node: Node) -> None:
        self._refresh()

    def progress(self, engine: Any, node: Node, metrics: MetricSeries) -> None:
        self._refresh()

    def phase_finished(self, engine: Any, node: Node) -> None:
        self._refresh()

    def message(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text)
        else:
            super().message(text)

    def finish(self, engine: Any, result: Any) -> None:
        self.abort(engine)

    def abort(self, engine: Any) -> None:
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None


def make_console() -> Console:
    """Wide enough for the node table when output goes to a file or CI log (rich assumes 80 columns)."""
    probe = Console()
    return Console(highlight=False, width=None if probe.is_terminal else 160)


def make_display(enabled: bool, console: Console | None = None) -> PlainDisplay:
    console = console or make_console()
    if enabled and console.is_terminal and sys.stdout.isatty():
        return RichDisplay(console)
    return PlainDisplay(console)

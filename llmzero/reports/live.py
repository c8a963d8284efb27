"""Progress while a search runs: a live rich view on a terminal, plain lines elsewhere (CI, logs).

Both are search observers (llmzero.search.observer): they read the SearchView each event hands
them and never reach into the engine.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..metrics import names
from ..search.observer import SearchObserver, SearchView
from ..tree import Node, NodeStatus
from .tables import fmt_score, tree_view


class PlainDisplay(SearchObserver):
    """One line per event; used when stdout is not a terminal or search.display=false."""

    def __init__(self, console: Console | None = None, every_s: float = 5.0):
        self.console = console or Console(highlight=False)
        self.every_s = every_s
        self._last: dict[int, float] = {}

    def on_search_start(self, view: SearchView) -> None:
        t = view.tree
        self.console.print(f"search: {view.search_dir} — iteration {t.iteration}/{view.budget}, {len(t)} nodes so far")

    def on_phase_start(self, view: SearchView, node: Node) -> None:
        src = "scratch" if node.resume_from is None else f"#{node.resume_from} step {node.resume_step}"
        self.console.print(f"[{view.tree.iteration}/{view.budget}] ▶ node {node.id} ({node.kind}, from {src}, "
                           f"{node.max_steps} steps) {node.diagnosis[:120]}")
        self._warn_fallback(node)

    def _warn_fallback(self, node: Node) -> None:
        """One line per node when the configured agent failed and the fallback answered (never one per retry)."""
        head, sep, why = node.agent.partition(" (fallback: ")
        if sep and node.attempts <= 1:
            self.console.print(f"[yellow]    ! node {node.id}: agent {escape(why.rstrip(')')[:240])} — the "
                               f"{escape(head)} agent answered instead[/]", highlight=False)

    def on_phase_metrics(self, view: SearchView, node: Node, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        if now - self._last.get(node.id, 0.0) < self.every_s:
            return
        self._last[node.id] = now
        self.console.print(f"    node {node.id}: step {node.steps_done}/{node.max_steps}, best val {fmt_score(node.best_val)}")

    def on_phase_state(self, view: SearchView, node: Node, state: str) -> None:
        if state == "queued":
            self.console.print(f"    node {node.id}: queued (the executor's scheduler has not started it yet: free "
                               f"resources, a runtime environment, or the batch before it){_counts(view)}")
        else:
            self.console.print(f"    node {node.id}: running{_counts(view)}")

    def on_phase_end(self, view: SearchView, node: Node) -> None:
        extra = ""
        if node.status == NodeStatus.EARLY_STOPPED and node.stop_reason:
            extra = f" — {node.stop_reason[:160]}"
        elif node.error:
            extra = f" — {node.error.splitlines()[0][:160]}"
        self.console.print(f"    node {node.id} {node.status}: best val {fmt_score(node.best_val)} at step "
                           f"{node.best_step}{extra}")

    def on_message(self, view: SearchView, text: str) -> None:
        self.console.print(text)


def _counts(view: SearchView) -> str:
    """'  (2 running, 1 queued)' once any phase waits in a cluster's queue; nothing otherwise."""
    queued = sum(r.state == "queued" for r in view.running)
    return f"  ({len(view.running) - queued} running, {queued} queued)" if queued else ""


class RichDisplay(PlainDisplay):
    """Live tree with statuses, each running phase's progress and val score, and the budget used."""

    def __init__(self, console: Console | None = None):
        super().__init__(console)
        self._live: Live | None = None

    def _render(self, view: SearchView) -> Group:
        parts: list[Any] = [tree_view(view.tree, title=f"LLMZero search — {view.search_dir}")]
        for run in view.running:
            n = run.node
            last = run.metrics.records[-1] if run.metrics.records else {}
            row = Table.grid(padding=(0, 1))
            if run.state == "queued":
                row.add_row(Text(f"node {n.id}", style="dim"), Text("queued", style="dim"))
                parts.append(row)
                continue
            row.add_row(Text(f"node {n.id}", style="cyan"),
                        ProgressBar(total=max(1, n.max_steps), completed=n.steps_done, width=30),
                        Text(f"{n.steps_done}/{n.max_steps}  best val {fmt_score(n.best_val)}  reward "
                             f"{last.get(names.REWARD_MEAN, float('nan')):.3f}  kl {last.get(names.KL, float('nan')):.4f}",
                             style="cyan"))
            parts.append(row)
        budget = f"iterations {view.tree.iteration}/{view.budget}{_counts(view)}"
        if view.max_gpu_hours is not None:
            budget += f"   GPU-h {view.gpu_hours:.2f}/{view.max_gpu_hours}"
        if view.max_agent_usd is not None:
            budget += f"   agent ${view.agent_usd:.2f}/{view.max_agent_usd}"
        best = view.best
        budget += f"   best val {fmt_score(best.best_val if best else None)}"
        parts.append(Panel(Text(budget), title="budget", expand=False))
        return Group(*parts)

    def _refresh(self, view: SearchView) -> None:
        if self._live is not None:
            self._live.update(self._render(view))

    def on_search_start(self, view: SearchView) -> None:
        self._live = Live(self._render(view), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def on_phase_start(self, view: SearchView, node: Node) -> None:
        if self._live is not None:
            self._warn_fallback(node)
        self._refresh(view)

    def on_phase_metrics(self, view: SearchView, node: Node, records: list[dict[str, Any]]) -> None:
        self._refresh(view)

    def on_phase_state(self, view: SearchView, node: Node, state: str) -> None:
        self._refresh(view)

    def on_phase_end(self, view: SearchView, node: Node) -> None:
        self._refresh(view)

    def on_message(self, view: SearchView, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text)
            self._refresh(view)
        else:
            super().on_message(view, text)

    def on_search_end(self, view: SearchView, result: Any) -> None:
        self.on_search_abort(view)

    def on_search_abort(self, view: SearchView) -> None:
        if self._live is not None:
            self._refresh(view)
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

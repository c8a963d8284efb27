"""W&B as a search observer: a run per phase while it trains, one for the search when it ends."""

from __future__ import annotations

from typing import Any

from ..search.observer import SearchObserver, SearchView
from ..tree import Node, Tree
from .wandb_runs import WandbTracker


def search_rows(tree: Tree) -> list[dict[str, Any]]:
    """The per-node table (paper Tables 18-21) as plain rows."""
    return [{"node": n.id, "kind": n.kind, "parent": n.parent, "status": n.status, "pruned": n.pruned,
             "best_val": n.best_val, "best_step": n.best_step, "test": n.test_score,
             "steps": n.steps_done, "max_steps": n.max_steps, "wall_hrs": n.cost.wall_s / 3600,
             "gpu_hrs": n.cost.gpu_s / 3600, "agent_usd": n.cost.agent_usd, "diagnosis": n.diagnosis[:500]}
            for n in tree]


class WandbObserver(SearchObserver):
    """Register after the report writer: the search run logs the plots it drew."""

    def __init__(self, tracker: WandbTracker) -> None:
        self.tracker = tracker

    def on_phase_start(self, view: SearchView, node: Node) -> None:
        self.tracker.phase_started(node, node.attempts)

    def on_phase_metrics(self, view: SearchView, node: Node, records: list[dict[str, Any]]) -> None:
        self.tracker.phase_metrics(node.id, records)

    def on_phase_end(self, view: SearchView, node: Node) -> None:
        self.tracker.phase_finished(node)

    def on_search_end(self, view: SearchView, result: Any) -> None:
        best = result.best
        plots = {p.name: p for p in sorted((view.search_dir / "plots").glob("*.png"))}
        self.tracker.search_finished(search_rows(view.tree), plots, {
            "stop_reason": result.stop_reason, "best_node": best.id if best else None,
            "best_val": best.best_val if best else None, "best_test": best.test_score if best else None,
            "base_model": dict(result.base_scores)})

    def on_search_abort(self, view: SearchView) -> None:
        self.tracker.close()

"""The discovered strategy as a shareable recipe: one entry per phase of the best scratch-to-leaf path.

Each phase holds its full configuration, the steps it trains along the path, the checkpoint
step it hands on, and the diagnosis behind the transition (as in the paper's Tables 8-11).
Replaying (replay.py) runs phase i from phase i-1's weights at `resume_step` for `steps` steps, or for the same
share of an epoch (`steps_per_epoch`, format 2) on a training split of another size.
"""

from __future__ import annotations

from typing import Any, Callable

from ..tree import Node, Tree

RECIPE_VERSION = 2  # 2 adds each phase's steps_per_epoch


def phase_lengths(path: list[Node]) -> list[int]:
    """Steps each phase contributes to the strategy: up to the step the next phase resumes from,
    and for the last phase up to its best validation step."""
    out = []
    for i, node in enumerate(path):
        if i + 1 < len(path):
            out.append(int(path[i + 1].resume_step or 0))
        else:
            out.append(int(node.best_step or node.steps_done))
    return out


def build_recipe(tree: Tree, best: Node, meta: dict[str, Any],
                 steps_per_epoch: Callable[[dict[str, Any]], int] | None = None) -> dict[str, Any]:
    path = tree.strategy_path(best.id)
    lengths = phase_lengths(path)
    phases = []
    for node, length in zip(path, lengths):
        start = node.global_offset
        phases.append({
            "node": node.id,
            "kind": node.kind,
            "resume_step": node.resume_step,
            "steps": length,
            "steps_per_epoch": steps_per_epoch(dict(node.hparams)) if steps_per_epoch else None,
            "global_steps": [start, start + length],
            "hparams": dict(node.hparams),
            "changes": dict(node.changes),
            "diagnosis": node.diagnosis,
            "rationale": node.rationale,
            "best_val": node.best_val,
            "best_step": node.best_step,
            "status": node.status,
        })
    return {
        "llmzero_recipe": RECIPE_VERSION,
        "name": meta.get("search_id", "strategy"),
        "source": {k: meta.get(k) for k in ("task", "model", "trainer", "agent", "search_dir") if k in meta},
        "result": {
            "node": best.id,
            "val": best.best_val,
            "test": best.test_score,
            "total_steps": sum(lengths),
            "node_path": [n.id for n in path],
        },
        "phases": phases,
    }

"""What UCT reads off the tree: normalised scores (eq. 7) and subtree visit counts (eq. 8).

Visit counts are derived from node statuses rather than stored, so a tree reloaded after a
crash can never disagree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tree import Node, NodeStatus, Tree
from .uct import normalise


@dataclass(frozen=True)
class VisitStats:
    """Counts over a node's (unpruned) subtree, the inputs of eq. 8."""

    v_val: int
    v_fail: int
    v_early: int
    v_total: int
    mean_norm_score: float


def score_range(tree: Tree) -> tuple[float, float] | None:
    scores = [n.best_val for n in tree.validated()]
    return (min(scores), max(scores)) if scores else None


def normalised_score(tree: Tree, node: Node) -> float:
    """ŝ of eq. 7 over every validated score in the tree; 0 for a node without a score."""
    rng = score_range(tree)
    if rng is None or not node.validated:
        return 0.0
    return normalise(node.best_val, *rng)


def visit_stats(tree: Tree, node_id: int) -> VisitStats:
    """Eq. 8's counts over the unpruned subtree of node_id.

    A phase still in flight counts as a visit that has not validated yet (a virtual loss),
    so concurrent selections spread out instead of piling onto one branch.
    Early-stopped phases that reached a validation score count both as validated (their
    score is real, §3.5) and as early stops (penalised by w_e).
    """
    v_val = v_fail = v_early = v_total = 0
    norm_scores = []
    for n in tree.subtree(node_id):
        if n.status == NodeStatus.PENDING and n.started_at is None:
            continue  # created but never launched: not a visit yet
        v_total += 1
        if n.status == NodeStatus.FAILED:
            v_fail += 1
        if n.status == NodeStatus.EARLY_STOPPED:
            v_early += 1
        if n.validated:
            v_val += 1
            norm_scores.append(normalised_score(tree, n))
    mean = sum(norm_scores) / len(norm_scores) if norm_scores else 0.0
    return VisitStats(v_val, v_fail, v_early, v_total, mean)

"""What to do next: root, UCT descent with virtual-child expansion, debug, or forced scratch.

Implements Appendix D.3 on top of the pure eqs. 5-8 in uct.py, plus the forced
from-scratch injection of §3.3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config.schema import TreeLimits, UCTParams
from ..tree import Node, NodeKind, NodeStatus, Tree
from .uct import exploitation, should_expand, uct_child, uct_virtual
from .visits import normalised_score, visit_stats


@dataclass(frozen=True)
class Action:
    """Create a phase of `kind` (a NodeKind) under `node`: root (no parent), evolve (a child of `node`),
    debug (a fix of the failed `node`) or scratch (a from-scratch child of the best node, §3.3)."""

    kind: str
    node: int | None  # the parent of the phase to create
    trace: list[dict[str, Any]] = field(default_factory=list)  # UCT values met on the way down


def scratch_ratio(tree: Tree) -> tuple[int, int]:
    """(n_scratch, n_evolve) over unpruned phases: trained from scratch vs. resumed from a checkpoint.

    The root is trained from scratch and counts as such; debug fixes count by what they load.
    """
    n_scratch = sum(1 for n in tree if not n.pruned and n.resume_from is None)
    n_evolve = sum(1 for n in tree if not n.pruned and n.resume_from is not None)
    return n_scratch, n_evolve


def needs_scratch(tree: Tree, rho_min: float) -> bool:
    """§3.3: inject a from-scratch phase when n_scratch / n_evolve < ρ_min."""
    n_scratch, n_evolve = scratch_ratio(tree)
    return n_evolve > 0 and n_scratch / n_evolve < rho_min


def child_uct(tree: Tree, parent_visits: int, child: Node, params: UCTParams) -> float:
    s = visit_stats(tree, child.id)
    q = exploitation(s.v_val, s.v_fail, s.v_early, s.v_total, s.mean_norm_score, params)
    return uct_child(q, parent_visits, s.v_total, params)


def select(tree: Tree, limits: TreeLimits, params: UCTParams, rho_min: float) -> Action | None:
    """The next action, or None when the whole tree is terminal (nothing left to try)."""
    root = tree.root()
    if root is None:
        return Action(NodeKind.ROOT, None)
    if needs_scratch(tree, rho_min):
        best = tree.best_node()
        if best is not None:
            n_s, n_e = scratch_ratio(tree)
            return Action(NodeKind.SCRATCH, best.id, [{"n_scratch": n_s, "n_evolve": n_e, "rho_min": rho_min}])
    if tree.is_terminal(root.id, limits):
        return None
    trace: list[dict[str, Any]] = []
    node = root
    while True:
        if node.status == NodeStatus.FAILED:
            # A debug chain deepens until the failure is fixed (§3.2): continue the newest live
            # chain, and open a new one only when every chain below has run out.
            chains = [c for c in tree.debug_children(node.id)
                      if not tree.is_terminal(c.id, limits) and _selectable(tree, c, limits)]
            if chains:
                trace.append({"node": node.id, "decision": f"continue debug chain:{chains[-1].id}"})
                node = chains[-1]
                continue
            if tree.can_expand(node, limits):
                trace.append({"node": node.id, "decision": "debug"})
                return Action(NodeKind.DEBUG, node.id, trace)
            return None
        n_p = visit_stats(tree, node.id).v_total
        k = len(tree.evolve_children(node.id))
        candidates = [
            c for c in tree.children(node.id)
            if not tree.is_terminal(c.id, limits) and _selectable(tree, c, limits)
        ]
        ucts = {c.id: child_uct(tree, n_p, c, params) for c in candidates}
        step: dict[str, Any] = {"node": node.id, "N": n_p, "k": k, "children": {str(i): u for i, u in ucts.items()}}
        if tree.can_expand(node, limits):
            new = uct_virtual(normalised_score(tree, node), n_p, k, params)
            step["new"] = new
            if should_expand(new, list(ucts.values()), k, limits.max_evolve_children):
                step["decision"] = "expand"
                trace.append(step)
                return Action(NodeKind.EVOLVE, node.id, trace)
        if not ucts:
            return None
        best_id = max(ucts, key=lambda i: (ucts[i], -i))
        step["decision"] = f"descend:{best_id}"
        trace.append(step)
        node = tree[best_id]


def _selectable(tree: Tree, node: Node, limits: TreeLimits) -> bool:
    """A subtree is worth descending into only if some node in it can act now (not just in flight)."""
    return any(
        tree.can_expand(n, limits) for n in tree.subtree(node.id)
    )

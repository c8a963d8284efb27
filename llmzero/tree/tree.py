"""The search tree: nodes, paths, terminality, debug-chain pruning (§3.2).

Only structure lives here; the scores and visit counts UCT reads are computed from it by
llmzero.search.visits, so a tree reloaded after a crash can never disagree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

from .node import Node
from .status import NodeKind, NodeStatus


class Limits(Protocol):
    """The branching limits of §3.2 (llmzero.config.schema.TreeLimits holds their defaults)."""

    max_evolve_children: int  # k_max
    max_debug_children: int
    max_debug_depth: int


@dataclass
class Tree:
    nodes: dict[int, Node] = field(default_factory=dict)
    iteration: int = 0  # iterations begun; a node created in iteration t has node.iteration == t
    next_id: int = 0

    # ---- structure -------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.id in self.nodes:
            raise ValueError(f"node {node.id} already exists")
        self.nodes[node.id] = node
        self.next_id = max(self.next_id, node.id + 1)
        return node

    def new_id(self) -> int:
        return self.next_id

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def __iter__(self) -> Iterator[Node]:
        return iter(sorted(self.nodes.values(), key=lambda n: n.id))

    def __len__(self) -> int:
        return len(self.nodes)

    def root(self) -> Node | None:
        """The live root: the unpruned node without a parent (a fixed failing root is replaced)."""
        roots = [n for n in self if n.parent is None and not n.pruned]
        return roots[0] if roots else None

    def children(self, node_id: int, *, include_pruned: bool = False) -> list[Node]:
        return [n for n in self if n.parent == node_id and (include_pruned or not n.pruned)]

    def subtree(self, node_id: int, *, include_pruned: bool = False) -> list[Node]:
        out, stack = [], [self.nodes[node_id]]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(self.children(node.id, include_pruned=include_pruned))
        return out

    def strategy_path(self, node_id: int) -> list[Node]:
        """The scratch-to-leaf path ending at node_id, following checkpoint loads back to a from-scratch phase.

        Follows resume_from rather than parent: a fixed debug node is lifted beside the failure it fixes but loads
        that failure's last checkpoint (or, when it saved none, the checkpoint the failed phase loaded).
        """
        path = [self.nodes[node_id]]
        while path[-1].resume_from is not None:
            path.append(self.nodes[path[-1].resume_from])
        return list(reversed(path))

    def evolve_children(self, node_id: int) -> list[Node]:
        """Children that count against the branching limit k_max: scratch injections do not (§3.3)."""
        return [c for c in self.children(node_id) if c.kind != NodeKind.SCRATCH]

    def debug_children(self, node_id: int) -> list[Node]:
        return [c for c in self.children(node_id) if c.kind == NodeKind.DEBUG and c.debug_of == node_id]

    def debug_depth(self, node_id: int) -> int:
        """How many debug hops separate this node from the original failure (0 for a non-debug node)."""
        depth, node = 0, self.nodes[node_id]
        while node.kind == NodeKind.DEBUG and node.debug_of is not None and node.reparented_from is None:
            depth += 1
            node = self.nodes[node.debug_of]
        return depth

    def debug_chain_origin(self, node_id: int) -> Node:
        """The oldest ancestor in the debug chain: the first failed node that this node's chain tries to fix."""
        node = self.nodes[node_id]
        while node.kind == NodeKind.DEBUG and node.debug_of is not None and node.reparented_from is None:
            node = self.nodes[node.debug_of]
        return node

    def debug_history(self, failed: Node) -> list[Node]:
        """The earlier failures of failed's debug chain, oldest first (what a fix must not repeat)."""
        chain = [failed]
        while chain[-1].debug_of is not None and chain[-1].debug_of in self.nodes:
            chain.append(self.nodes[chain[-1].debug_of])
        return list(reversed(chain[1:]))

    # ---- scores -------------------------------------------------------------------------------
    def validated(self) -> list[Node]:
        return [n for n in self if n.validated and not n.pruned]

    def best_node(self) -> Node | None:
        """Highest best validation score; ties go to the earlier node (cheaper, found first)."""
        cands = self.validated()
        return max(cands, key=lambda n: (n.best_val, -n.id)) if cands else None

    # ---- terminality (§3.2) -----------------------------------------------------------------
    def can_expand(self, node: Node, limits: Limits) -> bool:
        """Whether this node can still get a new child of its own (evolve, or debug when failed)."""
        if node.pruned or not node.finished:
            return False
        if node.status == NodeStatus.FAILED:
            return (
                not node.unfixable
                and len(self.debug_children(node.id)) < limits.max_debug_children
                and self.debug_depth(node.id) < limits.max_debug_depth
            )
        if not node.checkpoints:
            return False  # nothing to resume from
        return len(self.evolve_children(node.id)) < limits.max_evolve_children

    def is_terminal(self, node_id: int, limits: Limits) -> bool:
        """Terminal when it cannot get more children and every child is terminal; propagates upward."""
        node = self.nodes[node_id]
        if node.pruned:
            return True
        if node.status in NodeStatus.IN_FLIGHT:
            return False
        if self.can_expand(node, limits):
            return False
        return all(self.is_terminal(c.id, limits) for c in self.children(node_id))

    # ---- debug success: reparent and prune (§3.2) -------------------------------------------
    def lift_fixed_debug(self, node_id: int) -> Node | None:
        """A debug node that succeeded becomes a sibling of the chain's oldest failure; the chain is pruned.

        Returns the pruned origin, or None when node_id is not a debug node in a chain.
        """
        node = self.nodes[node_id]
        if node.kind != NodeKind.DEBUG or node.reparented_from is not None or node.debug_of is None:
            return None
        origin = self.debug_chain_origin(node_id)
        node.reparented_from = node.parent
        node.parent = origin.parent
        for n in self.subtree(origin.id):
            if n.id != node_id:
                n.pruned = True
        return origin

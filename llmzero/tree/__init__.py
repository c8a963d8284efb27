"""The data model: nodes, the tree, the phase outcome vocabulary and the tree.json journal.

It imports nothing of the search loop, the agents or the backends; everything else stands on it.
"""

from .node import Cost, Node, PhaseResult
from .status import NodeKind, NodeStatus, PhaseStatus
from .tree import Limits, Tree

__all__ = ["Cost", "Limits", "Node", "NodeKind", "NodeStatus", "PhaseResult", "PhaseStatus", "Tree"]

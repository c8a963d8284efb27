"""What a finished search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..tree import Node, Tree


@dataclass
class SearchResult:
    tree: Tree
    best: Node | None
    path: list[Node]  # the best scratch-to-leaf path: the discovered strategy
    stop_reason: str
    recipe: dict[str, Any] | None
    base_scores: dict[str, float] = field(default_factory=dict)  # the base model on val and test

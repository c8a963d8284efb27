"""tree.json: the tree and the search's metadata as one JSON document, with a format version.

Reading checks the version before anything else: a file from a newer LLMZero is refused with
a message naming both versions instead of being misread, and a file written before versions
existed (format 0, the landed searches before this module) is read as format 1, which has the
same fields. A damaged file raises JournalError naming what is wrong.
"""

from __future__ import annotations

from typing import Any

from .node import Node
from .tree import Tree

FORMAT_KEY = "llmzero_tree"
FORMAT_VERSION = 1
# Versions this reader understands; 0 is the unversioned layout, field for field the same as 1.
READABLE = (0, 1)


class JournalError(ValueError):
    """tree.json cannot be read: unknown format version, or not a tree at all."""


def dump(tree: Tree, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "iteration": tree.iteration,
        "next_id": tree.next_id,
        "nodes": [n.to_dict() for n in tree],
        "meta": dict(meta or {}),
    }


def format_version(raw: Any) -> int:
    if not isinstance(raw, dict):
        raise JournalError(f"expected a JSON object holding a search tree, found {type(raw).__name__}")
    version = raw.get(FORMAT_KEY, 0)
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE:
        raise JournalError(
            f"tree format version {version!r} is not one this LLMZero reads (it reads {list(READABLE)}, "
            f"writes {FORMAT_VERSION}); the search was written by a newer LLMZero: upgrade to continue it")
    return version


def load(raw: Any) -> tuple[Tree, dict[str, Any]]:
    """The tree and the metadata of a parsed tree.json."""
    format_version(raw)
    tree = Tree(iteration=int(raw.get("iteration", 0)), next_id=int(raw.get("next_id", 0)))
    for entry in raw.get("nodes", []):
        try:
            tree.add(Node.from_dict(entry))
        except (TypeError, ValueError) as exc:
            raise JournalError(f"node entry {str(entry)[:80]!r} is not a valid node: {exc}") from None
    return tree, dict(raw.get("meta") or {})


def dangling(tree: Tree) -> list[str]:
    """References to nodes that are not in the tree (a search cannot continue such a tree; a report can show it)."""
    return [f"node {n.id} names {ref}={getattr(n, ref)}, which is not in the tree"
            for n in tree for ref in ("parent", "resume_from", "debug_of")
            if getattr(n, ref) is not None and getattr(n, ref) not in tree.nodes]

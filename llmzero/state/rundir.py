"""Layout of a search directory, and reading and writing the journal (tree.json) inside it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tree import Tree, journal
from ..tree.journal import JournalError
from ..atomic import write_json_atomic, write_text_atomic, write_yaml_atomic


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def tree_file(self) -> Path:
        return self.root / "tree.json"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def recipe_file(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def events_file(self) -> Path:
        return self.root / "events.jsonl"

    def node_dir(self, node_id: int) -> Path:
        return self.root / "nodes" / str(node_id)

    def exists(self) -> bool:
        return self.tree_file.exists()

    def save_tree(self, tree: Tree, meta: dict[str, Any] | None = None) -> None:
        write_json_atomic(self.tree_file, {**journal.dump(tree, meta), "saved_at": time.time()})

    def load_tree(self, *, whole: bool = True) -> tuple[Tree, dict[str, Any]]:
        """The saved tree and metadata; JournalError (naming the file) when it cannot be read as one, or, with
        `whole`, when a node refers to one that is missing (a report can still show such a tree)."""
        try:
            tree, meta = journal.load(json.loads(self.tree_file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, JournalError) as exc:
            raise JournalError(f"{self.tree_file}: {exc}") from None
        broken = journal.dangling(tree) if whole else []
        if broken:
            raise JournalError(f"{self.tree_file}: {'; '.join(broken[:3])}")
        return tree, meta

    def write_node_file(self, node_id: int, name: str, data: Any) -> Path:
        path = self.node_dir(node_id) / name
        if name.endswith(".json"):
            write_json_atomic(path, data)
        elif name.endswith((".yaml", ".yml")):
            write_yaml_atomic(path, data)
        else:
            write_text_atomic(path, str(data))
        return path

    def log_event(self, event: str, **fields: Any) -> None:
        """Append-only history of decisions (selection traces, stops, fixes) for debugging a search."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.events_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), "event": event, **fields}, default=str) + "\n")

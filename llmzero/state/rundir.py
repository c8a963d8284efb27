"""Layout of a search directory and the journal (tree.json) inside it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..search.tree import Tree
from .atomic import read_json, write_json_atomic, write_text_atomic, write_yaml_atomic


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
        data = tree.to_dict()
        data["meta"] = meta or {}
        data["saved_at"] = time.time()
        write_json_atomic(self.tree_file, data)

    def load_tree(self) -> tuple[Tree, dict[str, Any]]:
        raw = read_json(self.tree_file)
        return Tree.from_dict(raw), raw.get("meta", {})

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

"""Layout of a search directory, and reading and writing the journal (tree.json) inside it."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import TEMP_SUFFIX, is_temp_file, temp_prefix, write_json_atomic, write_text_atomic, write_yaml_atomic
from ..tree import Tree, journal
from ..tree.journal import JournalError
from .phase_dir import checkpoint_dir, list_checkpoints

# The journal as it was one save earlier: every version we write is whole, so this is the copy to restore when
# tree.json is damaged afterwards (an editor, a disk fault, a copy cut short).
LAST_GOOD = "tree.last-good.json"


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

    @property
    def last_good_file(self) -> Path:
        return self.root / LAST_GOOD

    def exists(self) -> bool:
        return self.tree_file.exists()

    def save_tree(self, tree: Tree, meta: dict[str, Any] | None = None) -> None:
        if self.tree_file.is_file():
            self._keep_last_good()
        write_json_atomic(self.tree_file, {**journal.dump(tree, meta), "saved_at": time.time()})

    def _keep_last_good(self) -> None:
        # A hard link to the current file costs no copy, and the atomic write below replaces tree.json's
        # inode, so the link keeps the old content; published by rename, so it is whole too.
        tmp = self.root / f"{temp_prefix(LAST_GOOD)}{os.getpid()}{TEMP_SUFFIX}"
        tmp.unlink(missing_ok=True)
        try:
            os.link(self.tree_file, tmp)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(self.tree_file, tmp)
        os.replace(tmp, self.last_good_file)

    def load_tree(self, *, whole: bool = True) -> tuple[Tree, dict[str, Any]]:
        """The saved tree and metadata; JournalError (naming the file and what to do) when it cannot be read as
        one, or, with `whole`, when a node refers to one that is missing (a report can still show such a tree)."""
        try:
            tree, meta = self.read_journal(self.tree_file)
        except JournalError as exc:
            raise JournalError(f"{exc}. {self._restore_advice()}") from None
        broken = journal.dangling(tree) if whole else []
        if broken:
            raise JournalError(f"{self.tree_file}: {'; '.join(broken[:3])}. {self._restore_advice()}")
        return tree, meta

    @staticmethod
    def read_journal(path: Path) -> tuple[Tree, dict[str, Any]]:
        try:
            return journal.load(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, JournalError) as exc:
            raise JournalError(f"{path}: {exc}") from None

    def _restore_advice(self) -> str:
        new = "or start a new search with search.dir=<new path>"
        try:
            tree, _ = self.read_journal(self.last_good_file)
        except JournalError:
            return f"No readable last good copy ({self.last_good_file.name}) is there: restore tree.json from a backup, {new}"
        if journal.dangling(tree):
            return f"The last good copy is damaged too: restore tree.json from a backup, {new}"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last_good_file.stat().st_mtime))
        return (f"A last good copy ({len(tree)} nodes, saved {when}) is kept: restore it with "
                f"`cp {self.last_good_file} {self.tree_file}` and rerun the same command, {new}")

    def missing_checkpoints(self, tree: Tree) -> list[str]:
        """Checkpoints the journal lists that are not on disk (deleted, or a directory copied in part): a child
        resuming from one, or the final evaluation of the best phase, would fail days into the search."""
        out = []
        for node in tree:
            listed = set(node.checkpoints)
            if not listed:
                continue
            gone = sorted(listed - set(list_checkpoints(self.node_dir(node.id))))
            if gone:
                where = checkpoint_dir(self.node_dir(node.id), gone[0]).parent
                out.append(f"node {node.id}: checkpoint step(s) {gone} listed in tree.json are missing from {where}")
        return out

    def remove_orphans(self) -> list[Path]:
        """Temporary files of atomic writes cut short by a kill (`.<name>.<random>.tmp`); only the lock holder
        calls this, so no other writer owns them."""
        gone = [p for p in self.root.iterdir() if p.is_file() and is_temp_file(p)]
        for tmp in gone:
            tmp.unlink(missing_ok=True)
        return gone

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


def resume_problem(given: str) -> str | None:
    """Why `search.resume=<given>` names no search to continue, or None."""
    where = Path(given).expanduser()
    if where.exists() and not where.is_dir():
        why = "it is a file, not a search directory"
    elif not RunDir(where).config_file.is_file():
        why = f"no search there ({RunDir(where).config_file} is missing)"
    else:
        return None
    return f"search.resume={given}: {why}; give the directory of an earlier search (it holds config.yaml and tree.json)"

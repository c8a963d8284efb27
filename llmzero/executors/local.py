"""Phases on this machine: the default executor (cluster=local)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..config.schema import ClusterConfig
from ..trainers.base import PhaseHandle, PhaseSpec, TrainerBackend


class LocalExecutor:
    """Each phase through the backend's own start(): its phase command as a child process of the search (it dies
    with the search, so a resumed search never races an orphan), or, for the simulator, a thread of the search."""

    def __init__(self, **options: Any) -> None:
        self.opts = ClusterConfig(**options)  # the settings checked once, by their schema
        self.name = self.opts.name

    def check(self, trainer: TrainerBackend, search_dir: Path, say: Callable[[str], None] | None = None) -> list[str]:
        host_problems = getattr(trainer, "host_problems", None)  # optional: a user's backend may predate it
        return list(host_problems()) if callable(host_problems) else []

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> PhaseHandle:
        return trainer.start(spec)

"""Phases on this machine: the default executor (cluster=local)."""

from __future__ import annotations

from typing import Any

from ..config.schema import ClusterConfig
from ..trainers.base import PhaseHandle, PhaseSpec, TrainerBackend
from ..trainers.subprocess_phase import SubprocessPhase


class LocalExecutor:
    """A backend's phase command as a child process of the search (it dies with the search, so a resumed search
    never races an orphan); a backend without one (the simulator) runs the phase itself, in this process."""

    def __init__(self, **options: Any) -> None:
        self.opts = ClusterConfig(**options)  # the settings checked once, by their schema
        self.name = self.opts.name

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> PhaseHandle:
        command = getattr(trainer, "phase_command", lambda s: None)(spec)
        if command is None:
            return trainer.start(spec)
        return SubprocessPhase(command.argv, command.phase_dir, env=command.env)

    def check(self) -> list[str]:
        return []

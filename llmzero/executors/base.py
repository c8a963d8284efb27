"""The executor interface: *where* a phase runs, apart from *what* it trains.

A trainer backend says what to run (`phase_command(spec)`: argv, environment, resources, see
llmzero/trainers/base.py); an executor says where, and hands the engine the same PhaseHandle
whatever the place:

    name: str
    launch(trainer, spec) -> PhaseHandle
        start the phase of `spec` and return at once. The handle's poll/done/stop/kill/result
        read the phase directory (metrics.jsonl, log.txt, result.json, checkpoints/), which
        therefore must be reachable from the search process; stop() writes STOP there (the
        phase ends as early_stopped at its next step) before any faster local signal.
    check() -> list[str]
        problems to report before the first phase (a cluster that cannot be reached, a
        directory its workers cannot see); each names the setting, the value and what to do.

An executor is any class named by `cluster._target_`; Hydra builds it with the rest of the
`cluster` config as keyword arguments (ClusterConfig in llmzero/config/schema.py holds the common
ones: max_concurrent, gpus_per_phase, poll_interval_s). To run phases on Kubernetes or SLURM,
write a class with these two methods that submits `phase_command(spec).argv` there and returns a
handle reading the shared phase directory; no file of the package needs to change.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..trainers.base import PhaseHandle, PhaseSpec, TrainerBackend


@runtime_checkable
class Executor(Protocol):
    name: str

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> PhaseHandle: ...

    def check(self) -> list[str]: ...

"""The executor interface: *where* a phase runs, apart from *what* it trains.

A trainer backend says what to run (`phase_command(spec)`: argv, environment, resources, see
llmzero/trainers/base.py); an executor says where, and hands the engine the same PhaseHandle
whatever the place. An executor is any class named by `cluster._target_`; Hydra builds it with
the rest of the `cluster` config as keyword arguments (ClusterConfig in llmzero/config/schema.py
holds the settings every executor takes: max_concurrent, gpus_per_phase, poll_interval_s; a richer
one subclasses it, as RayClusterConfig does). It provides:

    name: str
    check(trainer, search_dir, say) -> list[str]
        before the first phase: problems that would make phases fail or never start (a cluster that
        cannot be reached, a search directory its workers cannot see, a phase bigger than any node),
        each naming the setting, the value and what to do. `say` prints a progress line.
    launch(trainer, spec) -> PhaseHandle
        start the phase of `spec` and return at once. The handle's poll/done/stop/kill/result read
        the phase directory (metrics.jsonl, log.txt, result.json, checkpoints/), which must therefore
        be reachable from the search; stop() writes STOP there, which every phase entry point honours
        at its next step (a signal is only a local shortcut). spec.job_id, when set, is the id to
        submit the phase under: the engine saves it on the node in tree.json before launching.
    reattach(job_id, spec) -> PhaseHandle | None          (optional)
        after the search was killed, the handle of a phase whose job outlived it (running, queued, or
        ended while nobody watched), or None when that job does not exist, and the engine then runs
        the phase again from its last checkpoint. An executor whose phases die with the search (the
        local one) leaves it out.
    flush()                                                (optional)
        called after each round in which the engine launched what it could: an executor that submits
        phases in batches (the Hydra sweeper's, whose launcher takes a batch of jobs at once) sends the
        phases launched since the last flush as one batch.

A handle whose phase could not even be started (no scheduler, a launcher that cannot submit) raises LaunchFailed
from result(): that is not a failed phase for the error analyzer to debug but the infrastructure's fault, so the
search stops, says so, and the phase is launched again when the command is rerun.

Optional attributes of a handle: `job_id` and `state` ("queued" while the scheduler has not
started the phase, else "running"; the live display shows both).

To run phases on Kubernetes or SLURM, write a class with these methods that submits
`phase_command(spec).argv` there (wrapped in `python -m llmzero.executors.phase_log`, which copies
its output to the phase's log.txt) and returns a handle reading the shared phase directory; no file
of the package needs to change. llmzero/executors/ray_jobs.py is a complete example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..trainers.base import PhaseHandle, PhaseSpec, TrainerBackend


class LaunchFailed(RuntimeError):
    """A phase was never started because the executor could not launch it; the message names the executor and the
    nodes, and the phases are launched again on the next run."""


@runtime_checkable
class Executor(Protocol):
    name: str

    def check(self, trainer: TrainerBackend, search_dir: Path, say: Callable[[str], None] | None = None) -> list[str]: ...

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> PhaseHandle: ...

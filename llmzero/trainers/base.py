"""Trainer backend interface: how the search runs one training phase.

A backend is any class named by `trainer._target_` in the config; Hydra instantiates it
with the rest of the `trainer` config as keyword arguments. It must provide:

    name: str
    extra_hparams() -> dict[str, HParamSpec]
        pass-through hyperparameters this backend understands beyond the canonical
        vocabulary (llmzero.hparams.space); the search validates proposals against both.
    check(hparams) -> list[str]
        backend-specific constraints (e.g. divisibility of batch by rollouts); each string
        names the key, the value and what is allowed. Checked before a phase starts.
    steps_per_epoch(hparams) -> int
        optimiser steps in one pass over the training split at these hyperparameters, so
        agents can turn an epoch budget into max_steps (§3.4 stage 4).
    start(spec: PhaseSpec) -> PhaseHandle
        launch the phase and return at once. The phase writes spec.output_dir/metrics.jsonl
        (canonical names, llmzero.metrics.names), one flushed line per step, and saves
        checkpoints under spec.output_dir/checkpoints/step_<k>/.
    evaluate(checkpoint_dir, split) -> dict[str, float] | None   (optional)
        score a checkpoint (or the base model when None) on "val" or "test".

A PhaseHandle is the running phase:

    poll() -> list[dict]     new metric records since the last poll (non-blocking)
    done() -> bool           the phase has ended (any status)
    stop(reason) -> None     graceful stop: save a final checkpoint, end as early_stopped
    kill() -> None           hard stop, used when the search itself is interrupted
    result() -> PhaseResult  final outcome; only valid once done() is true

Backends run phases out of the search process where a crash could take it down (TRL and
verl use subprocesses), so an OOM or NaN fails the node, not the search.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..hparams.space import HParamSpec


@dataclass
class PhaseSpec:
    node_id: int
    hparams: dict[str, Any]
    output_dir: str
    max_steps: int
    init_checkpoint: str | None = None  # parent's checkpoints/step_<k>; None = train from the base model
    eval_every: int = 1
    save_every: int = 1
    seed: int = 0
    global_offset: int = 0  # steps already trained along the path: metrics carry global_step too
    resume_own: bool = False  # re-launch after a crash: continue from this phase's own last checkpoint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PhaseSpec":
        return cls(**raw)

    @property
    def dir(self) -> Path:
        return Path(self.output_dir)


@dataclass
class PhaseResult:
    status: str  # completed / early_stopped / failed (llmzero.search.node.NodeStatus)
    steps_done: int = 0
    best_val: float | None = None
    best_step: int | None = None
    val_subscores: dict[str, float] = field(default_factory=dict)
    test_score: float | None = None  # at best_step, when the backend evaluated the test split
    checkpoints: list[int] = field(default_factory=list)
    error: str | None = None
    log_tail: str = ""
    wall_s: float = 0.0
    gpu_s: float = 0.0


@runtime_checkable
class PhaseHandle(Protocol):
    def poll(self) -> list[dict[str, Any]]: ...

    def done(self) -> bool: ...

    def stop(self, reason: str = "") -> None: ...

    def kill(self) -> None: ...

    def result(self) -> PhaseResult: ...


@runtime_checkable
class TrainerBackend(Protocol):
    name: str

    def extra_hparams(self) -> dict[str, HParamSpec]: ...

    def check(self, hparams: dict[str, Any]) -> list[str]: ...

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int: ...

    def start(self, spec: PhaseSpec) -> PhaseHandle: ...


def checkpoint_dir(phase_dir: Path | str, step: int) -> Path:
    return Path(phase_dir) / "checkpoints" / f"step_{step}"


def list_checkpoints(phase_dir: Path | str) -> list[int]:
    root = Path(phase_dir) / "checkpoints"
    if not root.is_dir():
        return []
    steps = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step_") and p.name[5:].isdigit() and (p / "COMPLETE").exists():
            steps.append(int(p.name[5:]))
    return sorted(steps)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_checkpoint_complete(path: Path | str) -> None:
    """Written last, so a checkpoint interrupted mid-save is never offered for resumption.

    Everything in the checkpoint reaches the disk before the marker does, so the files inside
    need no atomic writes of their own; the phase's metrics.jsonl is synced here too, as the
    search trims it back to this checkpoint when it resumes the phase.
    """
    path = Path(path)
    for f in path.iterdir():
        if f.is_file():
            _fsync(f)
    metrics = path.parent.parent / "metrics.jsonl"
    if metrics.exists():
        _fsync(metrics)
    _fsync(path)
    (path / "COMPLETE").write_text("ok\n")
    _fsync(path / "COMPLETE")
    _fsync(path)

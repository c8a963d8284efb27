"""The trainer backend interface (`trainer._target_`): what the search asks of whatever runs one training phase
(`TrainerBackend`, its optional parts defaulted by `TrainerBase`), and the running phase (`PhaseHandle`).

Hydra builds a backend with the rest of the `trainer` section as keyword arguments, plus `task` and `model` (plain
dicts) and `cluster` when its constructor names that keyword. Hyperparameters reach it fully resolved (every key of
the space, defaults filled in by the search) and a phase's length is `spec.max_steps`: a backend holds no defaults of
its own. Phases run out of the search process (TRL and verl: child processes), so a crash fails a node, not the
search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from ..hparams.space import HParamSpec
# The phase-directory contract and the result vocabulary, re-exported for backend authors.
from ..state.phase_dir import checkpoint_dir, list_checkpoints, mark_checkpoint_complete
from ..tree import PhaseResult, PhaseStatus
from .subprocess_phase import SubprocessPhase


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
    job_id: str | None = None  # the id an executor submits the phase under (saved on the node before launch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PhaseSpec":
        return cls(**raw)

    @property
    def dir(self) -> Path:
        return Path(self.output_dir)

    def start_point(self) -> tuple[int, str | None]:
        """Where this attempt starts: a relaunch (resume_own) after its own last complete checkpoint within max_steps,
        else at step 0; and the adapter it starts from (that checkpoint, else the parent's, else None)."""
        own = [s for s in (list_checkpoints(self.dir) if self.resume_own else []) if s <= int(self.max_steps)]
        return (own[-1], str(checkpoint_dir(self.dir, own[-1]))) if own else (0, self.init_checkpoint)


__all__ = ["EvalRequest", "PhaseCommand", "PhaseHandle", "Resources", "PhaseResult", "PhaseSpec", "PhaseStatus", "TrainerBackend", "TrainerBase", "checkpoint_dir",
           "list_checkpoints", "mark_checkpoint_complete", "require_hparams"]


@dataclass(frozen=True)
class Resources:
    """What one phase holds while it runs (the executor asks its scheduler for it)."""

    gpus: float = 0.0
    cpus: float = 1.0
    memory_gb: float | None = None  # None: no explicit request
    # True: the phase process places its own GPU workers on the cluster (verl's Ray actors claim `gpus` themselves),
    # so the executor reserves none for the process; reserving them too would leave its workers none to start on.
    placed_by_phase: bool = False


@dataclass
class PhaseCommand:
    """A phase as a process: it speaks only through files in `phase_dir` (metrics.jsonl, log.txt, result.json,
    checkpoints/) and honours a STOP file there at its next step, so it can run wherever that directory is
    reachable. `argv` is never passed through a shell."""

    argv: list[str]
    phase_dir: str
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class EvalRequest:
    checkpoint: str | None  # a checkpoint directory, or None for the base model
    split: str  # "val" or "test"
    hparams: dict[str, Any]  # the settings to score with: the checkpoint's phase's, or θ0


@runtime_checkable
class PhaseHandle(Protocol):
    def poll(self) -> list[dict[str, Any]]:
        """New metric records since the last poll, without blocking."""

    def done(self) -> bool:
        """Whether the phase has ended, whatever its status."""

    def stop(self, reason: str = "") -> None:
        """Graceful stop: save a final checkpoint and end as early_stopped."""

    def kill(self) -> None:
        """Hard stop, when the search itself is interrupted."""

    def result(self) -> PhaseResult:
        """The outcome; valid once done() is true."""


@runtime_checkable
class TrainerBackend(Protocol):
    name: str
    can_evaluate: bool  # False: the search reports no test or base-model score

    def extra_hparams(self) -> dict[str, HParamSpec]:
        """Pass-through hyperparameters beyond the canonical vocabulary; proposals are validated against both."""

    def check(self, hparams: dict[str, Any]) -> list[str]:
        """Backend constraints on `hparams`, each naming the key, the value and what is allowed (before a start)."""

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        """Optimiser steps in one pass over the training split, to turn an epoch budget into steps (§3.4)."""

    def start(self, spec: PhaseSpec) -> PhaseHandle:
        """Launch the phase on this machine and return at once. It writes `metrics.jsonl` (one flushed line per step,
        canonical names) and `checkpoints/step_<k>/` in spec.dir; TrainerBase runs phase_command(spec) as a child."""

    def evaluate(self, checkpoint_dir: str | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None:
        """{"score": ..., <subtask>: ...} of a checkpoint (None: the base model) on "val" or "test", or None when the
        evaluation failed."""

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]:
        """Several evaluations at once (the end of a search asks for all it needs in one call)."""

    def prepare(self, say: Callable[[str], None]) -> None:
        """One-time work before the first phase, in the search process where the user sees it (`say` prints)."""

    def host_problems(self) -> list[str]:
        """What this machine lacks to run a phase itself (cluster=local), each with the way out."""

    def inert_hparams(self) -> dict[str, str]:
        """Hyperparameters this backend, as configured, ignores: {key: why}."""

    def phase_command(self, spec: PhaseSpec) -> "PhaseCommand | None":
        """*What* a phase runs as its own process (argv, environment, resources); the executor decides *where*.
        None: only the backend's own start() can run it, and executors for other machines refuse it up front."""


class TrainerBase:
    """Defaults for the optional parts of TrainerBackend: no extra hyperparameters, no constraints, no evaluation."""

    name: str = "trainer"
    can_evaluate: bool = False

    def extra_hparams(self) -> dict[str, HParamSpec]:
        return {}

    def check(self, hparams: dict[str, Any]) -> list[str]:
        return []

    def evaluate(self, checkpoint_dir: str | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None:
        return None

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]:
        return [self.evaluate(r.checkpoint, r.split, r.hparams) for r in requests]

    def prepare(self, say: Callable[[str], None]) -> None:
        pass

    def inert_hparams(self) -> dict[str, str]:
        """Hyperparameters this backend, as configured, ignores: {key: why}. The search space marks them, and no
        agent may change them (a change would be reported as a transition though training did not change)."""
        return {}

    def host_problems(self) -> list[str]:
        """What this machine lacks to run a phase itself (cluster=local): each a message naming the setting and
        the way out. Asked once before the search starts, so a missing GPU is one error, not a failed phase."""
        return []

    def phase_command(self, spec: PhaseSpec) -> PhaseCommand | None:
        return None

    def eval_job(self, requests: Sequence[EvalRequest], workdir: str | Path) -> Any:
        """The final evaluation as a process (eval_process.EvalJob) an executor can run on the cluster, its files
        in `workdir`; None: evaluate_batch runs in the search process (or the backend cannot evaluate)."""
        return None

    def start(self, spec: PhaseSpec) -> PhaseHandle:
        command = self.phase_command(spec)
        if command is None:
            raise NotImplementedError(f"the {self.name} trainer backend implements neither start() nor phase_command()")
        return SubprocessPhase(command.argv, command.phase_dir, env=command.env)


def missing_hparams(hparams: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """The keys a backend reads that are not set."""
    return [k for k in keys if hparams.get(k) is None]


def sampling_problems(hp: Mapping[str, Any]) -> list[str]:
    """The signs every GRPO backend needs of the canonical values: a KL penalty and an entropy bonus of at least 0,
    a sampling temperature above 0; each message names the key, the value and what is allowed."""
    out = []
    if float(hp["kl_coef"]) < 0:
        out.append(f"kl_coef={hp['kl_coef']!r} is not allowed: expected >= 0")
    if float(hp["entropy_coef"]) < 0:
        out.append(f"entropy_coef={hp['entropy_coef']!r} is not allowed: expected >= 0 (a bonus, not a penalty)")
    if float(hp["temperature"]) <= 0:
        out.append(f"temperature={hp['temperature']!r} is not allowed: sampling needs a temperature > 0")
    return out


def require_hparams(hparams: dict[str, Any], keys: tuple[str, ...] | list[str], backend: str) -> dict[str, Any]:
    """The hyperparameters as given, after checking that every key the backend reads is set.

    The search resolves every key (space defaults, then task, model, trainer and command line), so a
    missing one is a caller's mistake; a backend never fills one in with a default of its own.
    """
    missing = missing_hparams(hparams, keys)
    if missing:
        raise ValueError(f"the {backend} backend needs the hyperparameters {missing}, which the search always sets "
                         f"(conf/search/default.yaml); got only {sorted(k for k, v in hparams.items() if v is not None)}")
    return dict(hparams)

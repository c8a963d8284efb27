"""Trainer backend interface: how the search runs one training phase.

A backend is any class named by `trainer._target_` in the config; Hydra instantiates it
with the rest of the `trainer` config as keyword arguments, plus `task` and `model` (plain dicts),
and `cluster` too when its constructor takes that keyword (a backend that needs the topology:
gpus_per_phase, gpus_per_node, rollout_tensor_parallel). It must provide:

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
        launch the phase on this machine and return at once (what cluster=local does). The
        phase writes spec.output_dir/metrics.jsonl (canonical names, llmzero.metrics.names),
        one flushed line per step, and saves checkpoints under spec.output_dir/checkpoints/step_<k>/.
        TrainerBase runs phase_command(spec) as a child process (SubprocessPhase).
    can_evaluate: bool
        whether evaluate() scores checkpoints; when false the search reports no test or
        base-model score (TrainerBase says False and its evaluate returns None).
    evaluate(checkpoint_dir, split, hparams) -> dict[str, float] | None
        score a checkpoint (or the base model when None) on "val" or "test" with the settings
        of `hparams` (the checkpoint's phase, or θ0 for the base model):
        {"score": ..., <subtask>: ...}, or None when the evaluation failed.
    evaluate_batch(requests: list[EvalRequest]) -> list[dict[str, float] | None]
        several at once (the end of a search asks for all it needs in one call); TrainerBase
        loops over evaluate(), a backend that loads a model per call does better in one go.
    prepare(say) -> None
        one-time work before the first phase, in the search process so the user sees it
        (building or downloading the base model); `say` prints a line. TrainerBase: nothing.
    phase_command(spec) -> PhaseCommand | None
        *what* to run for a phase that runs as its own process: the entry point's argv, its
        environment and the resources it needs. The executor (llmzero.executors, chosen by
        cluster._target_) decides *where*: start() on this machine, a Ray job elsewhere. None
        (TrainerBase) means the backend can only run phases through its own start(), which
        executors that run phases elsewhere refuse up front. The argv's interpreter is
        sys.executable; an executor for other machines may swap it for their own python.

Hyperparameters reach a backend fully resolved (every key of the search space, defaults
filled in by the search from conf/search/default.yaml): a backend holds no defaults of its
own, and the phase length is spec.max_steps, already turned from an epoch budget into steps.

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

    can_evaluate: bool

    def evaluate(self, checkpoint_dir: str | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None: ...

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]: ...

    def prepare(self, say: Callable[[str], None]) -> None: ...

    def host_problems(self) -> list[str]: ...

    def inert_hparams(self) -> dict[str, str]: ...

    def phase_command(self, spec: PhaseSpec) -> "PhaseCommand | None": ...


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

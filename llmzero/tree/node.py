"""A node of the search tree: one training phase (paper §3.1), and the outcome a phase reports."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .status import NodeKind, NodeStatus, PhaseStatus


@dataclass
class Cost:
    wall_s: float = 0.0
    gpu_s: float = 0.0
    agent_tokens_in: int = 0
    agent_tokens_out: int = 0
    agent_usd: float = 0.0
    agent_calls: int = 0
    agent_cached_tokens: int = 0  # part of agent_tokens_in read from the provider's prompt cache

    def add(self, other: "Cost") -> "Cost":
        return Cost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Cost)))


@dataclass
class PhaseResult:
    """What a trainer backend reports when a phase ends (any backend, any executor)."""

    status: str  # a PhaseStatus
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

    def __post_init__(self) -> None:
        if self.status not in PhaseStatus.ALL:
            raise ValueError(f"PhaseResult.status={self.status!r} is not one of {list(PhaseStatus.ALL)}")


@dataclass
class Node:
    id: int
    parent: int | None
    kind: str
    hparams: dict[str, Any]
    resume_step: int | None = None  # step of resume_from's checkpoint to load; None = from scratch
    resume_from: int | None = None  # node whose checkpoint this phase loads (the parent, or for a
    # debug node the failed node's own source), None = from scratch
    status: str = NodeStatus.PENDING
    iteration: int = 0
    global_offset: int = 0  # steps already trained along the path before this phase
    max_steps: int = 0
    steps_done: int = 0
    best_val: float | None = None
    best_step: int | None = None
    val_subscores: dict[str, float] = field(default_factory=dict)
    test_score: float | None = None
    checkpoints: list[int] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    diagnosis: str = ""
    rationale: str = ""
    observations: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    agent: str = ""  # which agent answered (records heuristic fallbacks)
    error: str | None = None
    unfixable: bool = False  # the error analyzer gave up on this failure: no more debug children
    stop_reason: str = ""
    # Every early-stopper check while the phase ran: step, decision, reason, who answered, the evidence, and
    # (once known) what happened afterwards (search/stop_outcomes.py).
    stop_checks: list[dict[str, Any]] = field(default_factory=list)
    debug_of: int | None = None  # the failed node this debug node fixes
    reparented_from: int | None = None  # parent before a successful debug was lifted (§3.2)
    pruned: bool = False
    attempts: int = 0  # times this phase was started (>1 after a crash and resume)
    job_id: str | None = None  # the executor's id of the attempt in flight (a Ray job), found again after a crash
    started_at: float | None = None
    finished_at: float | None = None

    def __post_init__(self) -> None:
        # A tree.json edited by hand or damaged must fail here, on load, not days later in the loop.
        def ints(xs: Any) -> bool:
            return isinstance(xs, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in xs)

        problems = [
            f"{name}={value!r} (expected {allowed})" for name, value, ok, allowed in (
                ("id", self.id, ints([self.id]) and self.id >= 0, "an int ≥ 0"),
                ("parent", self.parent, self.parent is None or ints([self.parent]), "an int or null"),
                ("kind", self.kind, self.kind in NodeKind.ALL, f"one of {list(NodeKind.ALL)}"),
                ("status", self.status, self.status in NodeStatus.ALL, f"one of {list(NodeStatus.ALL)}"),
                ("hparams", self.hparams, isinstance(self.hparams, dict), "a mapping"),
                ("checkpoints", self.checkpoints, ints(self.checkpoints), "a list of steps"),
            ) if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def finished(self) -> bool:
        return self.status in NodeStatus.FINISHED

    @property
    def validated(self) -> bool:
        """Has a validation score: completed or early-stopped phases both count (paper Table 18)."""
        return self.best_val is not None and self.status in (NodeStatus.COMPLETED, NodeStatus.EARLY_STOPPED)

    def absorb(self, result: PhaseResult, gpus_per_phase: int = 0) -> None:
        """Take in a finished phase's outcome; costs add up over attempts (a resumed phase keeps its earlier ones).

        A backend that does not measure GPU time is charged wall time × the GPUs a phase holds.
        """
        self.status = result.status
        self.steps_done = result.steps_done
        self.best_val, self.best_step = result.best_val, result.best_step
        self.val_subscores = dict(result.val_subscores)
        self.test_score = result.test_score
        self.checkpoints = list(result.checkpoints)
        self.error = result.error
        self.finished_at = time.time()
        self.cost.wall_s += result.wall_s
        self.cost.gpu_s += result.gpu_s or result.wall_s * gpus_per_phase

    def changes_from(self, before: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters this node sets differently from `before` (its parent's, or the failure it fixes)."""
        return {k: v for k, v in self.hparams.items() if v != before.get(k)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Node":
        raw = dict(raw)
        raw["cost"] = Cost(**raw.get("cost", {}))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

"""A node of the search tree: one training phase (paper §3.1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


class NodeKind:
    ROOT = "root"  # the default configuration θ0, trained from scratch
    EVOLVE = "evolve"  # resumes the parent's weights at step k with new hyperparameters
    DEBUG = "debug"  # fixes a failed node (same resume point as the failed node)
    SCRATCH = "scratch"  # forced from-scratch injection (§3.3), child of the best node
    ALL = (ROOT, EVOLVE, DEBUG, SCRATCH)


class NodeStatus:
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    FAILED = "failed"
    ALL = (PENDING, RUNNING, COMPLETED, EARLY_STOPPED, FAILED)
    FINISHED = (COMPLETED, EARLY_STOPPED, FAILED)
    IN_FLIGHT = (PENDING, RUNNING)


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
    debug_of: int | None = None  # the failed node this debug node fixes
    reparented_from: int | None = None  # parent before a successful debug was lifted (§3.2)
    pruned: bool = False
    attempts: int = 0  # times this phase was started (>1 after a crash and resume)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in NodeStatus.FINISHED

    @property
    def validated(self) -> bool:
        """Has a validation score: completed or early-stopped phases both count (paper Table 18)."""
        return self.best_val is not None and self.status in (NodeStatus.COMPLETED, NodeStatus.EARLY_STOPPED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Node":
        raw = dict(raw)
        raw["cost"] = Cost(**raw.get("cost", {}))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

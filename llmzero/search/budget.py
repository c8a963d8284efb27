"""The search's budget (Algorithm 1's loop condition): iterations, GPU-hours, agent dollars and trainer steps."""

from __future__ import annotations

from ..config.schema import SearchConfig
from ..tree import Tree


def gpu_hours(tree: Tree) -> float:
    return sum(n.cost.gpu_s for n in tree) / 3600.0


def agent_usd(tree: Tree) -> float:
    return sum(n.cost.agent_usd for n in tree)


def trainer_steps(tree: Tree) -> int:
    """Optimizer steps run by every phase, failed and stopped ones included: the compute a search spent."""
    return sum(int(n.steps_done or 0) for n in tree)


def exhausted(tree: Tree, s: SearchConfig) -> str | None:
    """Why no new phase may start, or None while budget is left."""
    if tree.iteration >= s.budget:
        return f"iteration budget reached ({s.budget})"
    if s.max_gpu_hours is not None and gpu_hours(tree) >= s.max_gpu_hours:
        return f"GPU-hour cap reached ({gpu_hours(tree):.2f} ≥ {s.max_gpu_hours})"
    if s.max_trainer_steps is not None and trainer_steps(tree) >= s.max_trainer_steps:
        return f"trainer-step cap reached ({trainer_steps(tree)} ≥ {s.max_trainer_steps})"
    if s.max_agent_usd is not None and agent_usd(tree) >= s.max_agent_usd:
        return f"agent dollar cap reached (${agent_usd(tree):.2f} ≥ ${s.max_agent_usd})"
    return None


def iterations_left(tree: Tree, s: SearchConfig) -> int:
    return max(0, s.budget - tree.iteration)


def steps_left(tree: Tree, s: SearchConfig) -> int | None:
    """Trainer steps the search may still spend (None: no step cap)."""
    if s.max_trainer_steps is None:
        return None
    return max(0, s.max_trainer_steps - trainer_steps(tree))

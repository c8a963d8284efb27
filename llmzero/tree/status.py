"""The vocabularies of the data model: what kind of phase a node is, and where it stands.

`PhaseStatus` is what a finished phase reports (every trainer backend speaks it); a node adds
the two states before that, pending and running.
"""

from __future__ import annotations


class NodeKind:
    ROOT = "root"  # the default configuration θ0, trained from scratch
    EVOLVE = "evolve"  # resumes the parent's weights at step k with new hyperparameters
    DEBUG = "debug"  # fixes a failed node (same resume point as the failed node)
    SCRATCH = "scratch"  # forced from-scratch injection (§3.3), child of the best node
    ALL = (ROOT, EVOLVE, DEBUG, SCRATCH)


class PhaseStatus:
    """How a phase ended: the result vocabulary of every trainer backend."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    FAILED = "failed"
    ALL = (COMPLETED, EARLY_STOPPED, FAILED)


class NodeStatus(PhaseStatus):
    """A node's status: not started yet, training, or one of the phase outcomes."""

    PENDING = "pending"
    RUNNING = "running"
    ALL = (PENDING, RUNNING, *PhaseStatus.ALL)
    FINISHED = PhaseStatus.ALL
    IN_FLIGHT = (PENDING, RUNNING)

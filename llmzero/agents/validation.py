"""Validation of agent answers before anything runs.

An agent (LLM or rule-based) is untrusted input: every change is checked against the
hyperparameter space, the fixed-along-path rule, the parent's checkpoints and the trainer's
own constraints. The error message names the key, the value and what is allowed, so it can
be shown to an LLM on a retry (issue: LLM agents) or to a user.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..hparams.space import HParamError, HParamSpace
from ..hparams.steps import steps_for_epochs
from .base import ErrorFix, Proposal


class ProposalError(HParamError):
    """An agent answer outside the schema or bounds."""


@dataclass(frozen=True)
class ValidatedPlan:
    hparams: dict[str, Any]  # the child's full configuration
    resume_step: int | None
    max_steps: int


def _apply_changes(parent: Mapping[str, Any], changes: Mapping[str, Any], space: HParamSpace) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise ProposalError(f"changes={changes!r} must be a mapping of hyperparameter name to value")
    problems = []
    out = dict(parent)
    for key, value in changes.items():
        spec = space.specs.get(key)
        if spec is None:
            problems.append(f"changes.{key}={value!r} is not a known hyperparameter; allowed keys: {sorted(space.specs)}")
            continue
        try:
            out[key] = spec.coerce(f"changes.{key}", value)
        except HParamError as exc:
            problems.append(str(exc))
    if problems:
        raise ProposalError("; ".join(problems))
    return out


def resolve_max_steps(hparams: Mapping[str, Any], requested: int | None, steps_per_epoch: int, cap: int,
                      key: str = "max_steps") -> int:
    """Phase length: an explicit request, else hparams.max_steps, else epochs × steps per epoch.

    A length derived from epochs is clipped to the cap (the epoch budget is a wish, the cap a
    limit); an explicit request beyond the cap is an error the agent must hear about.
    """
    if requested is None and int(hparams.get("max_steps", 0) or 0) > 0:
        requested = int(hparams["max_steps"])
    if requested is None:
        if hparams.get("epochs") is None:
            raise ProposalError("the phase length is not set: give max_steps, or an epochs budget in the space")
        requested = min(cap, steps_for_epochs(hparams["epochs"], steps_per_epoch))
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1 or requested > cap:
        raise ProposalError(
            f"{key}={requested!r} is not valid: expected an int in [1, {cap}] (the cap is search.max_steps_per_phase)"
        )
    return requested


@dataclass(frozen=True)
class PlanRules:
    """What every new phase is checked against, whoever proposed it."""

    space: HParamSpace
    steps_per_epoch: Callable[[Mapping[str, Any]], int]
    max_steps_cap: int
    trainer_check: Callable[[dict[str, Any]], list[str]]

    def finish(self, hparams: dict[str, Any], requested_steps: int | None, resume_step: int | None,
               where: str = "", steps_key: str = "max_steps") -> ValidatedPlan:
        """Phase length and the trainer's own constraints, common to root, evolve and debug phases."""
        max_steps = resolve_max_steps(hparams, requested_steps, self.steps_per_epoch(hparams), self.max_steps_cap,
                                      steps_key)
        problems = self.trainer_check(hparams)
        if problems:
            raise ProposalError(where + "; ".join(problems))
        return ValidatedPlan(hparams=hparams, resume_step=resume_step, max_steps=max_steps)

    def root(self, hparams: Mapping[str, Any]) -> ValidatedPlan:
        return self.finish(self.space.validate(hparams, where="hparams"), None, None, "root configuration: ",
                           "hparams.max_steps")


def validate_proposal(
    proposal: Proposal,
    *,
    parent_hparams: Mapping[str, Any],
    parent_checkpoints: list[int],
    scratch: bool,
    rules: PlanRules,
) -> ValidatedPlan:
    hparams = _apply_changes(parent_hparams, proposal.changes, rules.space)
    hparams = rules.space.validate(hparams, where="hparams")
    rules.space.check_inert(parent_hparams, hparams)
    resume = proposal.resume_step
    if scratch and resume is not None:
        raise ProposalError(
            f"resume_step={resume!r} is not allowed for a from-scratch phase: checkpoint information is withheld; use null"
        )
    if resume is not None:
        if isinstance(resume, bool) or not isinstance(resume, int) or resume not in parent_checkpoints:
            raise ProposalError(
                f"resume_step={resume!r} is not a checkpoint of the parent; available steps: {parent_checkpoints} (or null for from scratch)"
            )
        # Only the adapter is checkpointed, so its shape (lora_rank) must match the parent's (§3.3).
        rules.space.check_transition(parent_hparams, hparams)
    return rules.finish(hparams, proposal.max_steps, resume)


def validate_fix(fix: ErrorFix, *, failed_hparams: Mapping[str, Any], rules: PlanRules,
                 steps_left: int | None = None) -> ValidatedPlan:
    """A fix's phase. `steps_left`: the failed phase's steps after the checkpoint the fix resumes from; a fix that
    sets no length runs those, scaled to cover the same prompts when it changes batch_size."""
    hparams = _apply_changes(failed_hparams, fix.changes, rules.space)
    hparams = rules.space.validate(hparams, where="hparams")
    rules.space.check_transition(failed_hparams, hparams)
    rules.space.check_inert(failed_hparams, hparams)
    steps = fix.max_steps
    if steps is None and steps_left is not None:
        old, new = failed_hparams.get("batch_size"), hparams.get("batch_size")
        scale = old / new if isinstance(old, (int, float)) and isinstance(new, (int, float)) and new > 0 else 1.0
        steps = min(rules.max_steps_cap, max(1, math.ceil(steps_left * scale)))
    return rules.finish(hparams, steps, None)

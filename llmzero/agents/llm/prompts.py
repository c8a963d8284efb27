"""Prompt templates (prompts/*.yaml) filled with the search state for each agent role.

Each template has a `system` part that is the same for every call of a search (metric and
hyperparameter descriptions, instructions, the answer schema: cacheable) and a `user` part
filled per call. Templates use ${name} placeholders; a missing one is an error, not a
silently empty prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from ...hparams.space import HParamSpace
from ...paths import data_dir
from ..base import ErrorContext, ProposalContext, StopContext
from . import render
from .answers import schema_text

ROLE_FILES = {"proposer": "proposer.yaml", "stopper": "early_stopper.yaml", "analyzer": "error_analyzer.yaml"}


@dataclass
class RenderedPrompt:
    role: str
    static_system: str
    system: str
    user: str
    images: list[str] = field(default_factory=list)


def _fill(template: str, where: str, **values: Any) -> str:
    try:
        return Template(template).substitute({k: str(v) for k, v in values.items()}).strip()
    except KeyError as exc:
        raise ValueError(f"prompt template {where} uses ${{{exc.args[0]}}}, which is not provided") from None


class PromptBook:
    def __init__(self, directory: str | Path | None = None):
        self.dir = Path(directory) if directory else data_dir("prompts")
        self.templates = {role: self._load(name) for role, name in ROLE_FILES.items()}
        self.metric_descriptions = self._load("metrics.yaml")
        self.hparam_descriptions = self._load("hyperparameters.yaml")
        self._static: dict[tuple[Any, ...], str] = {}

    def load(self, name: str) -> dict[str, Any]:
        """Another template file of the prompts folder (the skill agent's), checked like the roles' own."""
        return self._load(name)

    def _load(self, name: str) -> dict[str, Any]:
        path = self.dir / name
        if not path.is_file():
            raise FileNotFoundError(f"agent prompt file {path} is missing (agent.prompts_dir={str(self.dir)!r})")
        return yaml.safe_load(path.read_text()) or {}

    def static_system(self, role: str, space: HParamSpace) -> str:
        key = (role, tuple(space.specs))
        if key not in self._static:
            self._static[key] = _fill(
                self.templates[role]["system"], f"{ROLE_FILES[role]}:system",
                metric_descriptions=render.metric_descriptions_text(self.metric_descriptions),
                hparam_descriptions=render.hparam_descriptions_text(self.hparam_descriptions, space),
                space=render.space_text(space), schema=schema_text(role))
        return self._static[key]

    def retry(self, role: str, error: str) -> str:
        return _fill(self.templates[role]["retry"], f"{ROLE_FILES[role]}:retry", error=error)

    # ---- roles ---------------------------------------------------------------------------------
    def proposer(self, ctx: ProposalContext, images: list[str]) -> RenderedPrompt:
        t, parent = self.templates["proposer"], ctx.parent
        assert parent is not None, "the root phase is not proposed by an agent"
        if ctx.scratch:  # §3.3: a from-scratch child sees no checkpoint information
            checkpoint_block = _fill(t["scratch_block"], "proposer.yaml:scratch_block")
        else:
            checkpoint_block = _fill(t["resume_block"], "proposer.yaml:resume_block",
                                     checkpoints=sorted(ctx.parent_checkpoints) or "none",
                                     best_step=render.fmt(parent.best_step))
        plots_note = _fill(t["plots_note"], "proposer.yaml:plots_note", n_plots=len(images)) if images else ""
        user = _fill(
            t["user"], "proposer.yaml:user", parent_id=parent.id, parent_kind=parent.kind,
            parent_status=parent.status, parent_outcome=render.outcome(parent),
            parent_config=render.config_yaml(parent.hparams), summaries=render.summaries_text(ctx.parent_metrics),
            path=render.nodes_text(ctx.path, "(the parent is the first phase)"),
            siblings=render.nodes_text(ctx.siblings, "(nothing yet)"), best_val=render.fmt(ctx.best_val),
            budget_left=ctx.budget_left, steps_per_epoch=ctx.steps_per_epoch,
            batch_size=parent.hparams.get("batch_size", "n/a"), max_steps_cap=ctx.max_steps_cap,
            checkpoint_block=checkpoint_block, plots_note=plots_note, node_id=ctx.node_id)
        return RenderedPrompt("proposer", self.static_system("proposer", ctx.space), "", user, images)

    def stopper(self, ctx: StopContext, images: list[str]) -> RenderedPrompt:
        t, node, inc = self.templates["stopper"], ctx.node, ctx.incumbent
        step = ctx.metrics.last_step()
        plots_note = _fill(t["plots_note"], "early_stopper.yaml:plots_note", n_plots=len(images)) if images else ""
        user = _fill(
            t["user"], "early_stopper.yaml:user", node_id=node.id, step=step, max_steps=node.max_steps,
            steps_left=ctx.steps_left,
            changes=", ".join(f"{k}={render.fmt(v)}" for k, v in node.changes.items()) or "none",
            summaries=render.summaries_text(ctx.metrics), incumbent_id=inc.id if inc else "none",
            incumbent_best=render.fmt(inc.best_val if inc else None),
            incumbent_step=render.fmt(inc.best_step if inc else None),
            incumbent_summaries=render.summaries_text(ctx.incumbent_metrics) if ctx.incumbent_metrics else "(none)",
            budget_left=ctx.budget_left, plots_note=plots_note,
            evidence=ctx.evidence.text() if ctx.evidence is not None else "(none measured)")
        # the stopper's instructions do not depend on the search space
        return RenderedPrompt("stopper", self.static_system("stopper", HParamSpace()), "", user, images)

    def analyzer(self, ctx: ErrorContext) -> RenderedPrompt:
        t, node = self.templates["analyzer"], ctx.node
        user = _fill(
            t["user"], "error_analyzer.yaml:user", node_id=node.id, kind=node.kind, steps_done=node.steps_done,
            max_steps=node.max_steps, config=render.config_yaml(node.hparams), error=ctx.error or "(no message)",
            log_tail=ctx.log_tail.strip() or "(empty)", summaries=render.summaries_text(ctx.metrics),
            history=render.nodes_text(ctx.history, "(this is the first failure)"),
            resume_note=render.fix_start_text(ctx.resume_step, node.max_steps))
        return RenderedPrompt("analyzer", self.static_system("analyzer", ctx.space), "", user, [])

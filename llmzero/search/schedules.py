"""Which planner a search runs with, from its settings: a recipe replay (`recipe=`), a static baseline
(`sweeper.mode=grid|random`), the skill-based agent baseline (`sweeper.mode=skill_agent`), or the adaptive search. A fixed schedule is checked whole before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agents.validation import ProposalError
from ..config.schema import ConfigError, SearchConfig
from ..config.strategies import RecipeConfig, SweeperConfig, SweepMode
from ..hparams.space import HParamSpace
from ..strategy.replay import FixedPhase, find_recipe, load_recipe, replay_phases
from ..strategy.static import grid_trials, random_trials
from .planners import AdaptivePlanner, FixedPlanner, Planner
from .phase_rules import plan_rules
from .skill_planner import SkillPlanner


@dataclass
class Schedule:
    planner: Planner
    label: str  # what picks the phases, as the tables, the report and meta.json name it
    length: int | None = None  # a fixed schedule's phases (None: the adaptive search)
    skill_agent: bool = False  # the planner is the skill-based agent's: the LLM agent plans as one conversation

    def apply(self, search: SearchConfig) -> None:
        """A fixed schedule runs all its phases, whole: its length is the budget, and no agent stops one early."""
        if self.length is not None:
            search.budget = self.length
            search.early_stop.enabled = False


def make_schedule(*, recipe: RecipeConfig | None, sweeper: SweeperConfig, search: SearchConfig, space: HParamSpace,
                  theta0: dict[str, Any], trainer: Any, agent_name: str) -> Schedule:
    if recipe is not None:
        path = find_recipe(recipe.file)
        phases = replay_phases(load_recipe(path), theta0=theta0, space=space, steps_per_epoch=trainer.steps_per_epoch,
                               keep_absolute_steps=recipe.keep_absolute_steps, name=recipe.name or path.stem)
        name = f"recipe {recipe.name or path.stem}"
        return _fixed(phases, True, name, search, space, trainer)
    if sweeper.mode == SweepMode.grid:
        return _fixed(grid_trials(sweeper.params("grid"), theta0, space), False, "grid", search, space, trainer)
    if sweeper.mode == SweepMode.random:
        trials = random_trials(sweeper.params("random"), theta0, space, sweeper.trials, search.seed)
        return _fixed(trials, False, "random", search, space, trainer)
    if sweeper.mode == SweepMode.skill_agent:
        return Schedule(SkillPlanner(search.budget), f"skill agent ({agent_name})", skill_agent=True)
    return Schedule(AdaptivePlanner(search), agent_name)


def _fixed(phases: list[FixedPhase], chain: bool, name: str, search: SearchConfig, space: HParamSpace,
           trainer: Any) -> Schedule:
    rules = plan_rules(space, trainer, search.max_steps_per_phase)
    for i, phase in enumerate(phases, start=1):
        try:  # every phase must be runnable: a schedule refused at phase 3 would have spent phases 1-2 for nothing
            rules.finish(dict(phase.hparams), phase.steps, None)
        except ProposalError as exc:
            raise ConfigError(f"{name} phase {i}: {exc}") from None
    return Schedule(FixedPlanner(phases, chain=chain, name=name, agent_label=name), name, len(phases))

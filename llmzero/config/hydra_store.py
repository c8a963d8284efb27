"""Registration of the structured configs with Hydra's ConfigStore (the schemas live in schema.py)."""

from __future__ import annotations

import os
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ..paths import data_dir
from .ray_cluster import RayClusterConfig
from .root import LLMZeroConfig
from .schema import (ClaudeAgentConfig, ClusterConfig, HeuristicAgentConfig, LiteLLMAgentConfig, ModelConfig,
                     SearchConfig, SyntheticTrainerConfig, TaskConfig, TRLTrainerConfig)
from .strategies import RecipeConfig
from .dataset_task import DatasetTaskConfig
from .verl_trainer import VerlTrainerConfig

RECIPE_SUFFIXES = (".yaml", ".yml")


def _run_dir(search_dir: Optional[str], resume: Optional[str], default: str) -> str:
    """Hydra's run dir is the search directory: explicit search.dir, else the one being resumed, else a
    name derived from the choices, so re-running the same command finds the same search."""
    chosen = search_dir or resume
    return os.path.expanduser(chosen) if chosen else default


def quoted_value(text: str) -> str:
    """`text` as one quoted value of Hydra's override grammar (a path may hold characters the grammar reserves)."""
    quote = '"' if "'" in text else "'"
    return quote + text.replace(quote, "\\" + quote) + quote


def _planner_name(agent: str, recipe: Optional[str], mode: Any = None) -> str:
    """The part of a default directory's name that says what picks the phases: the agent of an adaptive search, the
    recipe replayed, or the static baseline. `mode` arrives as a SweepMode (omegaconf 2.4 checks the annotation)."""
    if recipe:
        return f"recipe-{recipe}"
    if mode and str(mode) != "adaptive":
        return str(mode)
    return agent


def shipped_recipes() -> dict[str, str]:
    """Name -> file of every recipe in recipes/ (each is a `recipe=<name>` option)."""
    folder = data_dir("recipes")
    files = sorted(p for p in folder.iterdir() if p.suffix in RECIPE_SUFFIXES) if folder.is_dir() else []
    return {p.stem: str(p) for p in files}


def register_configs() -> None:
    for name, fn in (("llmzero.run_dir", _run_dir), ("llmzero.planner", _planner_name)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    cs = ConfigStore.instance()
    cs.store(name="llmzero_schema", node=LLMZeroConfig)
    cs.store(group="task", name="base_task", node=TaskConfig)
    cs.store(group="task", name="base_dataset_task", node=DatasetTaskConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="trainer", name="base_synthetic", node=SyntheticTrainerConfig)
    cs.store(group="trainer", name="base_trl", node=TRLTrainerConfig)
    cs.store(group="trainer", name="base_verl", node=VerlTrainerConfig)
    cs.store(group="agent", name="base_heuristic", node=HeuristicAgentConfig)
    cs.store(group="agent", name="base_claude", node=ClaudeAgentConfig)
    cs.store(group="agent", name="base_litellm", node=LiteLLMAgentConfig)
    cs.store(group="cluster", name="base_cluster", node=ClusterConfig)
    cs.store(group="cluster", name="base_ray", node=RayClusterConfig)
    cs.store(group="search", name="base_search", node=SearchConfig)
    # recipe=<name> picks a shipped recipe; recipe=<path> is rewritten by the command line's preflight to
    # recipe=base_recipe recipe.file=<path> (a group option cannot be a path)
    cs.store(group="recipe", name="base_recipe", node=RecipeConfig)
    for name in shipped_recipes():
        cs.store(group="recipe", name=name, node=RecipeConfig(name=name, file=name))

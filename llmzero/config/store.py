"""Registration of the structured configs with Hydra's ConfigStore (the schemas live in schema.py)."""

from __future__ import annotations

import os
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from .ray_cluster import RayClusterConfig
from .schema import (ClaudeAgentConfig, ClusterConfig, HeuristicAgentConfig, LiteLLMAgentConfig, LLMZeroConfig,
                     ModelConfig, SearchConfig, SyntheticTrainerConfig, TaskConfig, TRLTrainerConfig)


def _run_dir(search_dir: Optional[str], resume: Optional[str], default: str) -> str:
    """Hydra's run dir is the search directory: explicit search.dir, else the one being resumed, else a
    name derived from the choices, so re-running the same command finds the same search."""
    chosen = search_dir or resume
    return os.path.expanduser(chosen) if chosen else default


def register_configs() -> None:
    if not OmegaConf.has_resolver("llmzero.run_dir"):
        OmegaConf.register_new_resolver("llmzero.run_dir", _run_dir)
    cs = ConfigStore.instance()
    cs.store(name="llmzero_schema", node=LLMZeroConfig)
    cs.store(group="task", name="base_task", node=TaskConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="trainer", name="base_synthetic", node=SyntheticTrainerConfig)
    cs.store(group="trainer", name="base_trl", node=TRLTrainerConfig)
    cs.store(group="agent", name="base_heuristic", node=HeuristicAgentConfig)
    cs.store(group="agent", name="base_claude", node=ClaudeAgentConfig)
    cs.store(group="agent", name="base_litellm", node=LiteLLMAgentConfig)
    cs.store(group="cluster", name="base_cluster", node=ClusterConfig)
    cs.store(group="cluster", name="base_ray", node=RayClusterConfig)
    cs.store(group="search", name="base_search", node=SearchConfig)

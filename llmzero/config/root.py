"""The root of the composed config: one section per group, each typed by its own schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from omegaconf import MISSING

from .schema import WandbConfig
from .strategies import SweeperConfig


@dataclass
class LLMZeroConfig:
    task: Any = MISSING
    model: Any = MISSING
    trainer: Any = MISSING
    search: Any = MISSING
    agent: Any = MISSING
    cluster: Any = MISSING
    recipe: Any = None  # a RecipeConfig when a recipe is replayed
    sweeper: SweeperConfig = field(default_factory=SweeperConfig)  # adaptive search, or a static baseline
    hparams: Dict[str, Any] = field(default_factory=dict)  # command-line overrides of θ0
    wandb: WandbConfig = field(default_factory=WandbConfig)  # one W&B run per phase, one for the search
    # Set by the llmzero Hydra sweeper on each job it launches: the spec.yaml of the one phase the job runs.
    phase_spec: Optional[str] = None

"""The settings the search loop runs with, built from the structured config (each default lives in
llmzero/config/schema.py, nowhere else)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.schema import ClusterConfig, SearchConfig, TrainerConfig, check_section, typed


@dataclass
class SearchSettings:
    search: SearchConfig
    cluster: ClusterConfig
    eval_every: int  # trainer.eval_every: steps between validation scorings
    save_every: int  # trainer.save_every: steps between checkpoints

    @classmethod
    def from_config(cls, cfg: Any) -> "SearchSettings":
        """From the composed config (typed, or a resumed search's plain config.yaml); each section is checked by its
        schema (the trainer's step intervals by TrainerConfig)."""
        trainer = check_section(cfg.trainer, TrainerConfig, "trainer")
        return cls(search=typed(SearchConfig, cfg.search, "search"),
                   cluster=check_section(cfg.cluster, ClusterConfig, "cluster"),
                   eval_every=trainer.eval_every, save_every=trainer.save_every)

"""The settings the search loop runs with, built from the structured config (each default lives in
llmzero/config/schema.py, nowhere else)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.schema import ClusterConfig, ConfigError, SearchConfig, typed


@dataclass
class SearchSettings:
    search: SearchConfig
    cluster: ClusterConfig
    eval_every: int  # trainer.eval_every: steps between validation scorings
    save_every: int  # trainer.save_every: steps between checkpoints

    def __post_init__(self) -> None:
        for key in ("eval_every", "save_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"trainer.{key}={value!r} is not valid: expected an int ≥ 1 (steps)")

    @classmethod
    def from_config(cls, cfg: Any) -> "SearchSettings":
        """From the composed config (typed, or a resumed search's plain config.yaml)."""
        return cls(search=typed(SearchConfig, cfg.search, "search"), cluster=typed(ClusterConfig, cfg.cluster, "cluster"),
                   eval_every=cfg.trainer.eval_every, save_every=cfg.trainer.save_every)

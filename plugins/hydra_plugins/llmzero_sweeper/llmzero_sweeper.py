"""The Sweeper class Hydra finds; the search itself is imported only when a sweep runs (_impl.py)."""

from typing import Any, Dict, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .config import LLMZeroSweeperConf  # noqa: F401 - registers hydra/sweeper=llmzero with the ConfigStore


class LLMZeroSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None) -> None:
        from ._impl import LLMZeroSweeperImpl

        self.impl = LLMZeroSweeperImpl(max_batch_size=max_batch_size, params=params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.sweep(arguments)

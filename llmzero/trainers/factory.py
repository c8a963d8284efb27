"""The trainer backend of a composed config: what the search, a sweeper job and the PBT baseline all build."""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import instantiate

from ..config.schema import plain
from .base import TrainerBackend


def trainer_from_config(cfg: Any) -> TrainerBackend:
    """`cfg.trainer`'s _target_ with its options, given the task and model sections as plain dicts. Not recursive: the
    task and model carry their own _target_, which the backend builds where it needs them (often in a phase process)."""
    extra = {"cluster": plain(cfg.cluster)} if _takes_cluster(cfg.trainer) and "cluster" in cfg else {}
    return instantiate(cfg.trainer, task=plain(cfg.task), model=plain(cfg.model), **extra, _convert_="all",
                       _recursive_=False)


def _takes_cluster(trainer_cfg: Any) -> bool:
    """Whether the backend's constructor names a `cluster` keyword (it reads the topology); others never see it."""
    from hydra.utils import get_class

    try:
        params = inspect.signature(get_class(str(trainer_cfg["_target_"]))).parameters
    except (ImportError, ValueError, KeyError, TypeError):
        return False  # instantiate() reports a bad _target_ with its own message
    return "cluster" in params

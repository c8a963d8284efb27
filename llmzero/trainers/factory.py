"""The trainer backend of a composed config: what the search, a sweeper job and the PBT baseline all build."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .base import TrainerBackend


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def trainer_from_config(cfg: Any) -> TrainerBackend:
    """`cfg.trainer`'s _target_ with its options, given the task and model sections as plain dicts. Not recursive: the
    task and model carry their own _target_, which the backend builds where it needs them (often in a phase process)."""
    return instantiate(cfg.trainer, task=_plain(cfg.task), model=_plain(cfg.model), _convert_="all", _recursive_=False)

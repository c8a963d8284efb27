"""Settings of the non-adaptive ways to pick phases: replaying a recipe (`recipe=`) and the static baselines
(`sweeper.mode=grid|random`). Every default is here, once; the Hydra sweeper plugin reads these same settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from .schema import Choice, _choice, _require


@dataclass
class RecipeConfig:
    """`recipe=<name>` (a file of recipes/) or `recipe=<path>`: replay that fixed schedule, no agent (paper §4.6)."""

    name: str = MISSING  # names the run directory and the report
    file: str = MISSING  # a path, or the name of a recipe shipped in recipes/
    # false: each phase keeps its share of an epoch on the target's training split (Appendix C.5's caveat: a
    # schedule's transition points move with the dataset's size); true: the recorded step counts as they are
    keep_absolute_steps: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.file), "recipe.file", self.file, "a recipe file or the name of one in recipes/")


class SweepMode(Choice):
    adaptive = "adaptive"  # the tree search (Algorithm 1)
    grid = "grid"  # every combination of sweeper.grid, one static phase each (paper: 8 trials of LR × LoRA rank)
    random = "random"  # sweeper.trials static phases drawn from sweeper.random (paper Appendix B.2)
    skill_agent = "skill_agent"  # the skill-based LLM agent baseline (§4.1, B.7): agent=claude or agent=litellm


PARAM_KEYS = ["values", "low", "high", "log", "relative", "same_as"]


@dataclass
class SweepParam:
    """How one hyperparameter varies across static trials. `values` are the choices (grid: each in turn; random:
    one drawn uniformly); else random draws from [low, high], log-uniformly when `log`. With `relative`, every
    number is a multiple of θ0's value, so one sweep fits models whose step sizes differ by orders of magnitude.
    `same_as` names another parameter of the sweep whose value this one takes (Appendix B.2 draws one clip ratio
    for both sides)."""

    values: Optional[List[Any]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    relative: bool = False
    same_as: Optional[str] = None

    def check(self, key: str, mode: str) -> None:
        if self.same_as is not None:
            return  # checked against its section's other parameters in SweeperConfig.params
        if self.values is not None:
            _require(len(self.values) > 0, f"{key}.values", self.values, "a non-empty list")
            return
        _require(mode == "random", f"{key}.values", self.values, "a list of values (a grid takes only values)")
        _require(self.low is not None and self.high is not None, f"{key}.low", self.low,
                 "a number, with high (or give values)")
        _require(self.low <= self.high, f"{key}.low", self.low, f"a number ≤ {key}.high={self.high}")
        _require(not self.log or self.low > 0, f"{key}.low", self.low, "a number > 0 when log is true")
        _require(math.isfinite(self.high), f"{key}.high", self.high, "a finite number")


def _rel(values: List[float]) -> Dict[str, Any]:
    return {"values": values, "relative": True}


def _paper_grid() -> Dict[str, Any]:
    # Appendix E.1: LR {1e-5, 3e-5, 5e-5, 1e-4} × LoRA rank {64, 128} around the practitioner's LR 5e-5 and rank 64,
    # written as multiples of θ0 so the same 8 trials fit the tiny model's (1e-3, rank 8) or any other.
    return {"learning_rate": _rel([0.2, 0.6, 1.0, 2.0]), "lora_rank": _rel([1, 2])}


def _paper_random() -> Dict[str, Any]:
    # Appendix B.2's ranges; those that depend on the model's scale as multiples of θ0 (practitioner: LR 5e-5,
    # KL 1e-3, batch 128, rank 64, rollouts 8, 3 epochs), the others as the paper gives them. The paper tasks
    # replace these with B.2's absolute numbers (conf/task/paper/).
    return {
        "learning_rate": {"low": 0.2, "high": 2.0, "log": True, "relative": True},
        "kl_coef": {"low": 0.01, "high": 1.0, "log": True, "relative": True},
        "temperature": {"low": 0.6, "high": 1.2},
        "clip_ratio_low": {"low": 0.15, "high": 0.35},
        "clip_ratio_high": {"same_as": "clip_ratio_low"},  # B.2 draws one "clip ratio"
        "batch_size": _rel([0.5, 1.0, 2.0]),
        "lora_rank": _rel([0.25, 0.5, 1.0, 2.0]),
        "rollouts": _rel([0.75, 1.0, 1.5]),
        "epochs": _rel([1.0, 5.0 / 3.0]),
    }


@dataclass
class SweeperConfig:
    """Which phases a search runs: `python -m llmzero sweeper.mode=grid` on this machine, or through any Hydra
    launcher with `-m hydra/sweeper=llmzero` (plugins/hydra_plugins/llmzero_sweeper)."""

    mode: SweepMode = SweepMode.adaptive
    trials: int = 8  # random mode: trials drawn (a rerun with more continues the same draw)
    grid: Dict[str, Any] = field(default_factory=_paper_grid)  # hyperparameter -> SweepParam fields
    random: Dict[str, Any] = field(default_factory=_paper_random)
    # Grid mode: when set, the grid is exactly these axes, hyperparameter -> values as they are (what
    # `hparams.<name>=a,b` sweeps on the command line of the llmzero sweeper become)
    axes: Dict[str, List[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mode = _choice(SweepMode, self.mode, "sweeper.mode")
        _require(self.trials >= 1, "sweeper.trials", self.trials, "an int ≥ 1")
        for section in ("grid", "random"):
            self.params(section)

    def params(self, section: str) -> Dict[str, SweepParam]:
        """The parameters of sweeper.grid (or its axes) or sweeper.random, each checked (the message names its key)."""
        if section == "grid" and self.axes:
            for key, values in self.axes.items():
                _require(isinstance(values, list) and len(values) > 0, f"sweeper.axes.{key}", values,
                         "a non-empty list of values")
            return {str(k): SweepParam(values=list(v)) for k, v in self.axes.items()}
        out = {}
        for key, raw in (getattr(self, section) or {}).items():
            where = f"sweeper.{section}.{key}"
            _require(isinstance(raw, dict), where, raw, f"a mapping with keys among {PARAM_KEYS}")
            unknown = sorted(set(raw) - set(PARAM_KEYS))
            if unknown:
                _require(False, f"{where}.{unknown[0]}", raw[unknown[0]], f"no such field; allowed: {PARAM_KEYS}")
            param = SweepParam(**raw)
            param.check(where, section)
            out[str(key)] = param
        for key, param in out.items():
            if param.same_as is not None:
                source = out.get(param.same_as)
                _require(source is not None and source.same_as is None, f"sweeper.{section}.{key}.same_as",
                         param.same_as, f"another parameter of sweeper.{section} that is drawn itself "
                         f"(among {sorted(k for k, p in out.items() if p.same_as is None and k != key)})")
        return out

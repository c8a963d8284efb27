"""The static baselines' trials (paper Appendix B.2, E.1): one configuration per trial, each trained once from
scratch. Pure functions of the sweep settings, θ0 and the seed, so a rerun draws the same trials (and a rerun
with more random trials keeps the first ones)."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Mapping

from ..config.schema import ConfigError
from ..config.strategies import SweepParam
from ..hparams.space import HParamError, HParamSpace
from .replay import FixedPhase, fit_type, times_theta0


def _scaled(key: str, value: Any, param: SweepParam, theta0: Mapping[str, Any], space: HParamSpace) -> Any:
    if key not in space.specs:
        return value  # _checked names the unknown hyperparameter
    if param.relative:
        return times_theta0(key, value, theta0, space, f"{key} (relative: true)")
    return fit_type(key, value, space)


def _checked(trials: list[dict[str, Any]], theta0: Mapping[str, Any], space: HParamSpace, what: str,
             ) -> list[FixedPhase]:
    out = []
    for i, changes in enumerate(trials, start=1):
        unknown = sorted(set(changes) - set(space.specs))
        if unknown:
            raise ConfigError(f"sweeper.{what}.{unknown[0]} is not valid: not a hyperparameter of this search "
                              f"(allowed: {sorted(space.specs)})")
        try:
            hparams = space.validate({**theta0, **changes}, where=f"sweeper.{what} trial {i}: hparams")
        except HParamError as exc:
            raise ConfigError(f"{exc} (the trial falls outside search.space)") from None
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in changes.items())
        out.append(FixedPhase(hparams=hparams, steps=None, label=f"{what} trial {i} of {len(trials)}: {shown}"))
    return out


def _tied(trial: dict[str, Any], params: Mapping[str, SweepParam]) -> dict[str, Any]:
    """The trial with every `same_as` parameter set to its source's value, in the sweep's order."""
    out = {}
    for key, param in params.items():
        out[key] = trial[param.same_as] if param.same_as is not None else trial[key]
    return out


def grid_trials(params: Mapping[str, SweepParam], theta0: Mapping[str, Any], space: HParamSpace) -> list[FixedPhase]:
    """Every combination of the parameters' values, the first parameter varying slowest."""
    keys = [k for k, p in params.items() if p.same_as is None]
    axes = [[_scaled(k, v, params[k], theta0, space) for v in (params[k].values or [])] for k in keys]
    trials = [_tied(dict(zip(keys, combo)), params) for combo in itertools.product(*axes)]
    return _checked(trials, theta0, space, "grid")


def _draw(rng: random.Random, param: SweepParam) -> Any:
    if param.values is not None:
        return rng.choice(list(param.values))
    low, high = float(param.low), float(param.high)  # type: ignore[arg-type]
    if param.log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def random_trials(params: Mapping[str, SweepParam], theta0: Mapping[str, Any], space: HParamSpace, trials: int,
                  seed: int) -> list[FixedPhase]:
    """`trials` configurations, each parameter drawn independently; the draw depends only on the seed."""
    rng = random.Random(seed)
    keys = sorted(k for k, p in params.items() if p.same_as is None)
    drawn = [_tied({k: _scaled(k, _draw(rng, params[k]), params[k], theta0, space) for k in keys}, params)
             for _ in range(trials)]
    return _checked(drawn, theta0, space, "random")

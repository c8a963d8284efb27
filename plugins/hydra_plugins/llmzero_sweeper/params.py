"""Sweep parameters in Hydra's own grammar, as the Optuna and Nevergrad sweepers read them, mapped onto the search.

They come from `hydra.sweeper.params` (key: "interval(1e-5, 1e-4)", ...) and from sweeps typed on the command line
(`hparams.learning_rate=tag(log, interval(1e-5, 1e-4))`), the command line winning. Only hyperparameters
(`hparams.<name>`) can be swept: the sweeper runs one search, whose other settings take one value. Per mode:

    adaptive   the space the agent searches: interval(a, b) -> search.space.<name>.low/high (tag log ->
               log_scale), choice(...) / range(...) -> search.space.<name>.choices
    grid       the grid's axes: choice(...) and range(...) list the values; an interval has none to list
    random     what each trial draws: interval(a, b) uniformly (tag log: log-uniformly), choice/range one of
               the values; hyperparameters not named stay at θ0
"""

# No `from __future__ import annotations` here: Hydra's plugin scan imports every module of hydra_plugins without
# registering it in sys.modules first, and a dataclass with string annotations then cannot resolve its module.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, OmegaConf

from llmzero.config.schema import ConfigError
from llmzero.config.strategies import SweepMode

SWEEPABLE = "hparams."  # only hyperparameters are swept


@dataclass
class SweepParams:
    """Each swept hyperparameter: its values (choice, range) or its interval."""

    values: Dict[str, List[Any]] = field(default_factory=dict)
    intervals: Dict[str, Tuple[float, float, bool]] = field(default_factory=dict)  # name -> (low, high, log)

    def names(self) -> List[str]:
        return [*self.values, *self.intervals]

    def overridden_by(self, other: "SweepParams") -> "SweepParams":
        """These sweeps with `other`'s replacing any of the same hyperparameter (the command line over the config)."""
        replaced = set(other.names())
        return SweepParams(
            values={**{k: v for k, v in self.values.items() if k not in replaced}, **other.values},
            intervals={**{k: v for k, v in self.intervals.items() if k not in replaced}, **other.intervals})


def parse(lines: Mapping[str, Any], where: str) -> Dict[str, Override]:
    """`key: expression` pairs (hydra.sweeper.params) as Hydra's parsed overrides, each error naming its key."""
    parser = OverridesParser.create()
    out = {}
    for key, expression in lines.items():
        try:
            (override,) = parser.parse_overrides([f"{key}={expression}"])
        except Exception as exc:  # noqa: BLE001 - Hydra's grammar errors come in several types
            raise ConfigError(f"{where}.{key}={expression!r} is not valid: {str(exc).splitlines()[0]} (the grammar of "
                              f"Hydra's sweepers: interval(a, b), tag(log, interval(a, b)), choice(a, b, ...), "
                              f"range(start, stop, step))") from None
        out[str(key)] = override
    return out


def collect(overrides: Mapping[str, Override], where: str) -> SweepParams:
    """The hyperparameter sweeps of `overrides`; a sweep of any other key is refused, saying what to do instead."""
    found = SweepParams()
    for key, override in overrides.items():
        if not key.startswith(SWEEPABLE):
            raise ConfigError(
                f"{where}{key} is not valid: hydra/sweeper=llmzero runs one search and sweeps its hyperparameters "
                f"only (hparams.<name>); to run one search per value of {key}, sweep it with Hydra's basic sweeper "
                f"(python -m llmzero -m {key}=a,b), each job a search of its own")
        name = key[len(SWEEPABLE):]
        value = override.value()
        if isinstance(value, IntervalSweep):
            found.intervals[name] = (float(value.start), float(value.end), "log" in (value.tags or set()))
        elif isinstance(value, (ChoiceSweep, RangeSweep)) or override.is_discrete_sweep():
            found.values[name] = list(override.sweep_iterator())
        else:
            raise ConfigError(f"{where}{key}={override.input_line.split('=', 1)[-1]} is not a sweep: give "
                              f"interval(a, b), choice(a, b, ...) or range(start, stop, step), or one value as an "
                              f"ordinary override")
    return found


def apply(cfg: DictConfig, params: SweepParams, mode: str) -> None:
    """Put the sweep where the search of `mode` reads it (see the module docstring)."""
    if not params.names():
        return
    if mode == SweepMode.grid.value:
        if params.intervals:
            name = next(iter(params.intervals))
            raise ConfigError(f"hparams.{name}=interval(...) is not valid with sweeper.mode=grid: a grid needs the "
                              f"values to list; give choice(a, b, ...) or range(start, stop, step)")
        OmegaConf.update(cfg, "sweeper.axes", {k: list(v) for k, v in params.values.items()}, merge=False)
    elif mode == SweepMode.random.value:
        draw: Dict[str, Any] = {k: {"values": list(v)} for k, v in params.values.items()}
        draw.update({k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log) in params.intervals.items()})
        OmegaConf.update(cfg, "sweeper.random", draw, merge=False)
    elif mode == SweepMode.adaptive.value:
        space = OmegaConf.select(cfg, "search.space") or {}
        for name in params.names():
            if name not in space:
                raise ConfigError(f"hparams.{name} is not valid: not a hyperparameter of this search "
                                  f"(allowed: {sorted(space)})")
        for name, (lo, hi, log) in params.intervals.items():
            OmegaConf.update(cfg, f"search.space.{name}.low", lo)
            OmegaConf.update(cfg, f"search.space.{name}.high", hi)
            OmegaConf.update(cfg, f"search.space.{name}.log_scale", bool(log))
        for name, values in params.values.items():
            OmegaConf.update(cfg, f"search.space.{name}.choices", list(values), merge=False)
    else:
        raise ConfigError(f"a hyperparameter sweep is not valid with sweeper.mode={mode}: that mode chooses the "
                          f"values itself; give one value per hyperparameter")

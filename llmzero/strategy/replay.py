"""Replaying a recipe (paper §4.6): the fixed schedule a search found, or one written by hand, as a chain of
phases for another task, model or dataset size.

A recipe phase gives its configuration as `hparams` (a search's export: the full configuration) and/or `scale`
(multiples of the target's θ0: how shipped recipes written from a paper's description fit any model), and its
length as `steps` with the `steps_per_epoch` it was recorded at, or as `epochs` (neither: its configuration's
own max_steps or epochs). Lengths follow the target's
training split: a phase keeps its share of an epoch (Appendix C.5: transition points move with the dataset's
size) unless `recipe.keep_absolute_steps`. Phase i+1 resumes from phase i's last step, as on the recorded path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..config.schema import ConfigError
from ..config.hydra_store import shipped_recipes
from ..hparams.space import HParamError, HParamSpace
from ..hparams.steps import steps_for_epochs
from .recipe import RECIPE_VERSION

PHASE_KEYS = ("hparams", "scale", "steps", "steps_per_epoch", "epochs")


@dataclass(frozen=True)
class FixedPhase:
    """One phase of a fixed schedule: its full configuration, its length, and what to show for it."""

    hparams: dict[str, Any]
    steps: int | None  # None: from the configuration's own max_steps or epochs
    label: str  # the diagnosis column of the tables and the report


def find_recipe(value: str) -> Path:
    """A recipe file: `value` as a path, else the recipe of that name in recipes/."""
    path = Path(str(value)).expanduser()
    if path.is_file():
        return path
    shipped = shipped_recipes()
    if str(value) in shipped:
        return Path(shipped[str(value)])
    raise ConfigError(f"recipe.file={value!r} is not valid: no such file, and not the name of a shipped recipe "
                      f"(one of {sorted(shipped)}, in recipes/)")


def load_recipe(path: Path) -> dict[str, Any]:
    """The recipe in `path`, its shape checked (each message names the file and the entry)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"recipe file {path} cannot be read: {first}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("phases"), list) or not raw["phases"]:
        raise ConfigError(f"recipe file {path} is not a recipe: expected a mapping with a non-empty list `phases` "
                          f"(the recipe.yaml a search writes, or one of recipes/)")
    version = raw.get("llmzero_recipe", RECIPE_VERSION)
    if not isinstance(version, int) or version > RECIPE_VERSION:
        raise ConfigError(f"recipe file {path}: llmzero_recipe={version!r} is not valid: this llmzero reads recipe "
                          f"formats 1 to {RECIPE_VERSION}; upgrade llmzero to replay it")
    for i, phase in enumerate(raw["phases"], start=1):
        where = f"recipe file {path}: phases[{i}]"
        if not isinstance(phase, dict):
            raise ConfigError(f"{where}={phase!r} is not valid: expected a mapping with keys among {list(PHASE_KEYS)}")
        for key in ("hparams", "scale"):
            if not isinstance(phase.get(key) or {}, dict):
                raise ConfigError(f"{where}.{key}={phase[key]!r} is not valid: expected a mapping of hyperparameters")
    return raw


def _number(value: Any, where: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and value <= 0):
        raise ConfigError(f"{where}={value!r} is not valid: expected a number > 0")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fit_type(key: str, value: Any, space: HParamSpace) -> Any:
    """A number computed for an int hyperparameter (a multiple, a uniform draw), rounded to an int."""
    spec = space.specs.get(key)
    return round(value) if spec is not None and spec.type == "int" and isinstance(value, float) else value


def times_theta0(key: str, factor: Any, theta0: Mapping[str, Any], space: HParamSpace, where: str) -> Any:
    """θ0's `key` times `factor`: how a schedule written for one model's scale fits another's (a recipe's `scale`,
    a sweep's `relative` values)."""
    base = theta0.get(key)
    if key not in space.specs or not _is_number(base) or not _is_number(factor):
        raise ConfigError(f"{where}={factor!r} is not valid: a multiple of θ0 needs a number and a numeric "
                          f"hyperparameter of this search (θ0's {key} is {base!r})")
    return fit_type(key, base * factor, space)


def _length(phase: Mapping[str, Any], spe: int, keep_absolute: bool, where: str) -> int | None:
    """None: the phase gives no length, so its configuration's own max_steps or epochs set it."""
    steps, recorded_spe, epochs = phase.get("steps"), phase.get("steps_per_epoch"), phase.get("epochs")
    if steps is None and epochs is None:
        return None
    if keep_absolute:
        if steps is None:
            raise ConfigError(f"recipe.keep_absolute_steps=true is not valid for this recipe: {where} gives its length "
                              f"in epochs only ({epochs}); drop the setting to replay it")
        return max(1, int(_number(steps, f"{where}.steps")))
    if steps is not None and recorded_spe is not None:
        share = _number(steps, f"{where}.steps") / _number(recorded_spe, f"{where}.steps_per_epoch")
        return steps_for_epochs(share, spe)
    if epochs is not None:
        return steps_for_epochs(_number(epochs, f"{where}.epochs"), spe)
    return max(1, int(_number(steps, f"{where}.steps")))  # a format-1 recipe: no steps per epoch to rescale by


def replay_phases(recipe: Mapping[str, Any], *, theta0: Mapping[str, Any], space: HParamSpace,
                  steps_per_epoch: Callable[[dict[str, Any]], int], keep_absolute_steps: bool,
                  name: str = "recipe") -> list[FixedPhase]:
    """The recipe's phases as they run on the target: configurations checked against the target's space, lengths
    rescaled to its training split. Raises ConfigError naming the phase, the key and the value."""
    out: list[FixedPhase] = []
    previous: dict[str, Any] = dict(theta0)
    for i, phase in enumerate(recipe["phases"], start=1):
        where = f"recipe {name}: phase {i}"
        hparams = {**previous, **(phase.get("hparams") or {})}
        unknown = sorted(set(hparams) - set(space.specs))
        if unknown:
            raise ConfigError(f"{where}: hparams.{unknown[0]}={hparams[unknown[0]]!r} is not a hyperparameter of this "
                              f"search (allowed: {sorted(space.specs)})")
        for key, factor in (phase.get("scale") or {}).items():
            hparams[key] = times_theta0(key, _number(factor, f"{where}: scale.{key}"), theta0, space,
                                        f"{where}: scale.{key}")
        try:
            hparams = space.validate(hparams, where=f"{where}: hparams")
            if out:
                space.check_transition(previous, hparams, where=f"{where}: hparams")
        except HParamError as exc:
            raise ConfigError(f"{exc} (this recipe does not fit the target's search.space)") from None
        steps = _length(phase, steps_per_epoch(hparams), keep_absolute_steps, where)
        label = str(phase.get("diagnosis") or phase.get("note") or f"{name}: phase {i} of {len(recipe['phases'])}")
        out.append(FixedPhase(hparams=hparams, steps=steps, label=label[:2000]))
        previous = hparams
    return out

"""The canonical hyperparameter vocabulary: types, bounds, roles, and validation.

Every trainer backend speaks this vocabulary; a backend maps it onto its own knobs
(GRPOConfig, verl's ppo_trainer.yaml, ...). Keeping one vocabulary is what lets a
strategy discovered with one backend be replayed with another.

Roles follow the paper's observation (§4.3.2) that capacity parameters accumulate
along a strategy while regularisation parameters oscillate: the heuristic agent
never lowers a capacity parameter along a path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

CAPACITY = "capacity"
REGULARISATION = "regularisation"
OTHER = "other"
ROLES = (CAPACITY, REGULARISATION, OTHER)
TYPES = ("float", "int", "bool", "str")


class HParamError(ValueError):
    """A hyperparameter value or configuration the search refuses; the message names key, value and what is allowed."""


@dataclass(frozen=True)
class HParamSpec:
    """One hyperparameter: its type, bounds (inclusive) or choices, default, and role."""

    type: str = "float"
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    default: Any = None
    role: str = OTHER
    log_scale: bool = False
    fixed_along_path: bool = False
    description: str = ""
    # Non-empty: the trainer in use ignores this parameter (why, in a sentence), so no agent may change it.
    inert: str = ""

    def __post_init__(self) -> None:
        """Field errors name the field only (`low=...`); HParamSpace.from_config puts the key in front."""
        def bad(name: str, allowed: str) -> HParamError:
            return HParamError(f"{name}={getattr(self, name)!r} is not valid: expected {allowed}")

        if self.type not in TYPES:
            raise bad("type", f"one of {list(TYPES)}")
        if self.role not in ROLES:
            raise bad("role", f"one of {list(ROLES)}")
        for name in ("log_scale", "fixed_along_path"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise bad(name, "a finite number, or null for no bound")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise bad("low", f"a number ≤ high={self.high!r}")
        if self.log_scale and (self.low is None or self.low <= 0):
            raise bad("low", "a number > 0 (log_scale needs a positive lower bound)")
        if self.choices is not None and (not isinstance(self.choices, tuple) or not self.choices):
            raise bad("choices", "a non-empty list, or null")
        if self.default is not None:
            try:
                self.coerce("default", self.default)
            except HParamError as exc:
                raise HParamError(str(exc).replace("hyperparameter ", "", 1)) from None

    def allowed(self) -> str:
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.type == "bool":
            return "true or false"
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "+inf" if self.high is None else _fmt(self.high)
        return f"{'an' if self.type == 'int' else 'a'} {self.type} in [{lo}, {hi}]"

    def coerce(self, key: str, value: Any) -> Any:
        """Return `value` converted to this spec's type, or raise HParamError naming the key."""
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        bad = HParamError(f"hyperparameter {key}={shown} is not valid: expected {self.allowed()}")
        if self.type == "bool":
            if isinstance(value, bool):
                out: Any = value
            elif isinstance(value, str) and value.lower() in ("true", "false"):
                out = value.lower() == "true"
            else:
                raise bad
        elif self.type == "int":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise bad from None
            if not isinstance(value, int):
                raise bad
            out = value
        elif self.type == "float":
            if isinstance(value, bool):
                raise bad
            try:
                out = float(value)
            except (TypeError, ValueError, OverflowError):  # 1e400 as an int literal overflows a float
                raise bad from None
            if not math.isfinite(out):
                raise bad
        else:
            if not isinstance(value, str):
                raise bad
            out = value
        if self.choices is not None and out not in self.choices:
            raise bad
        if self.type in ("int", "float"):
            if (self.low is not None and out < self.low) or (self.high is not None and out > self.high):
                raise bad
        return out


def spec_from_mapping(entry: Any, where: str) -> HParamSpec:
    """One hyperparameter's entry of a config; an error names `where` and the field."""
    fields = set(HParamSpec.__dataclass_fields__)
    if not isinstance(entry, Mapping):
        raise HParamError(f"{where}={entry!r} is not valid: expected a mapping with keys among {sorted(fields)}")
    entry = dict(entry)
    unknown = sorted(set(entry) - fields)
    if unknown:
        raise HParamError(f"{where}.{unknown[0]} is not a field of a hyperparameter; allowed: {sorted(fields)}")
    if isinstance(entry.get("choices"), (list, tuple)):
        entry["choices"] = tuple(entry["choices"])
    try:
        return HParamSpec(**entry)
    except HParamError as exc:
        raise HParamError(f"{where}.{exc}") from None


def _fmt(x: float) -> str:
    return f"{x:g}"


# Pairs whose values must not cross, and why: (low key, high key, what crossing would mean).
ORDERED = (("clip_ratio_low", "clip_ratio_high",
            "the PPO clip range [1 - low, 1 + high] would let a token's probability fall further than it may rise in "
            "one update, the reverse of clip-higher (DAPO); set clip_ratio_high ≥ clip_ratio_low"),)


def ordering_problems(hparams: Mapping[str, Any], where: str) -> list[str]:
    out = []
    for low, high, why in ORDERED:
        a, b = hparams.get(low), hparams.get(high)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b < a:
            out.append(f"{where}.{high}={b!r} is below {where}.{low}={a!r}: {why}")
    return out


@dataclass(frozen=True)
class HParamSpace:
    """The set of hyperparameters a search may set, keyed by canonical name."""

    specs: Mapping[str, HParamSpec] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: Mapping[str, Mapping[str, Any]]) -> "HParamSpace":
        specs = {}
        for key, entry in raw.items():
            specs[str(key)] = spec_from_mapping(entry, f"search.space.{key}")
        return cls(specs)

    def merged(self, extra: Mapping[str, HParamSpec]) -> "HParamSpace":
        out = dict(self.specs)
        out.update(extra)
        return HParamSpace(out)

    def with_inert(self, reasons: Mapping[str, str]) -> "HParamSpace":
        """This space with `reasons[key]` marking each key of it the trainer ignores (TrainerBase.inert_hparams)."""
        return HParamSpace({k: replace(s, inert=str(reasons[k])) if reasons.get(k) else s for k, s in self.specs.items()})

    def check_inert(self, parent: Mapping[str, Any], child: Mapping[str, Any], *, where: str = "changes") -> None:
        """Reject an agent's change to a parameter the trainer ignores: it would be reported as a strategy's
        transition though training did not change."""
        for key, spec in self.specs.items():
            if spec.inert and key in parent and key in child and parent[key] != child[key]:
                raise HParamError(f"{where}.{key}={child[key]!r} changes a parameter that has no effect here "
                                  f"({spec.inert}); keep it at {parent[key]!r}")

    def keys_with_role(self, role: str) -> list[str]:
        return [k for k, s in self.specs.items() if s.role == role]

    def defaults(self) -> dict[str, Any]:
        return {k: s.default for k, s in self.specs.items() if s.default is not None}

    def validate(self, hparams: Mapping[str, Any], *, where: str = "hparams") -> dict[str, Any]:
        """Coerce and check a full configuration; raise one HParamError listing every problem."""
        problems: list[str] = []
        out: dict[str, Any] = {}
        for key, value in hparams.items():
            spec = self.specs.get(key)
            if spec is None:
                problems.append(
                    f"{where}.{key}={value!r} is not a known hyperparameter; allowed keys: {sorted(self.specs)}"
                )
                continue
            try:
                out[key] = spec.coerce(f"{where}.{key}", value)
            except HParamError as exc:
                problems.append(str(exc))
        missing = [k for k, s in self.specs.items() if k not in hparams and s.default is None]
        for key in missing:
            problems.append(f"{where}.{key} is missing and has no default; expected {self.specs[key].allowed()}")
        problems += ordering_problems(out, where)
        if problems:
            raise HParamError("; ".join(problems))
        return out

    def check_transition(self, parent: Mapping[str, Any], child: Mapping[str, Any], *, where: str = "changes") -> None:
        """Reject changes to parameters fixed along a path (lora_rank: the adapter shape, §3.3)."""
        for key, spec in self.specs.items():
            if spec.fixed_along_path and key in parent and key in child and parent[key] != child[key]:
                raise HParamError(
                    f"{where}.{key}={child[key]!r} changes a parameter fixed along a strategy path "
                    f"(parent has {parent[key]!r}); it can only be chosen for a from-scratch phase"
                )

"""Checks of a command line before Hydra acts on it.

Hydra composes the config and creates the run directory before our task function runs, so a typo
would reach the user as Hydra's own error (exit 1, no suggestion) and a `search.dir` that is a file
as a traceback. Composing once here with Hydra's compose API (about 0.2 s) lets every such mistake
end in one llmzero message naming the key, the value and what is allowed. A multirun (`-m`, or
`hydra.mode=MULTIRUN`) is checked the same way, once per value of each swept key (a sweep's `a=1,2` is
not one config), with its sweep directory and the llmzero sweeper's own settings; Hydra's other flags
(`--cfg`, `--info`, ...) are left to Hydra.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from pathlib import Path
from typing import Sequence

import yaml

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config.schema import ConfigError
from .config.hydra_store import quoted_value, register_configs
from .paths import conf_dir
from .state.rundir import resume_problem

# ConfigStore entries that hold a group's schema; listed by Hydra among the options, never chosen by a user.
SCHEMA_PREFIX = "base_"
SWEEP_SECTIONS = ("sweeper.grid", "sweeper.random")


_RECIPE = re.compile(r"^(\+{0,2})recipe=(.+)$")


def expand_recipe_path(args: Sequence[str]) -> list[str]:
    """`recipe=<path>` as overrides Hydra can take: a group option cannot be a path, so the file is given as
    recipe.file of the recipe schema (`recipe=<name>` of a shipped recipe is a group option and stays)."""
    out: list[str] = []
    for arg in args:
        m = _RECIPE.match(arg)
        value = m.group(2) if m else ""
        if not m or "," in value or not (re.search(r"[/\\~]", value) or value.endswith((".yaml", ".yml"))):
            out.append(arg)
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"recipe={value} is not valid: {path} is not a file (give a recipe.yaml a search wrote, "
                              f"or the name of one in recipes/)")
        out += [f"{m.group(1)}recipe=base_recipe", f"recipe.name={quoted_value(_recipe_name(path))}",
                f"recipe.file={quoted_value(str(path.resolve()))}"]
    return out


def _recipe_name(path: Path) -> str:
    """The recipe's own name (a search's id for an exported one), else the file's stem, fit for a directory name."""
    try:
        raw = yaml.safe_load(path.read_text())
        name = str(raw.get("name") or "") if isinstance(raw, dict) else ""
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        name = ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name or path.stem)[:80] or "recipe"


MULTIRUN_FLAGS = ("-m", "--multirun")
MAX_SWEEP_COMPOSES = 32  # a long sweep is checked on its first values of the keys past this many


def is_multirun(args: Sequence[str]) -> bool:
    return any(a in MULTIRUN_FLAGS for a in args) or any(
        re.fullmatch(r"\+{0,2}hydra\.mode=['\"]?MULTIRUN['\"]?", a, flags=re.IGNORECASE) for a in args)


def preflight(args: Sequence[str]) -> None:
    """Raise ConfigError for a command line whose config cannot compose, whose directories cannot be used or whose
    settings are invalid."""
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in args):
        return
    overrides = [a for a in args if a not in MULTIRUN_FLAGS]
    if is_multirun(args):
        _preflight_multirun(overrides)
        return
    cfg = compose_config(overrides)
    check_directories(cfg)
    _check_settings(cfg)


def _check_settings(cfg: DictConfig) -> None:
    if not cfg.search.resume:  # a resumed search's settings are its saved ones, read when it opens
        from .app import check_settings  # the run's own checks: a bad setting ends here, not after two more composes

        try:
            check_settings(cfg)
        except ConfigError:
            raise
        except Exception:  # noqa: BLE001 - anything else is reported by the run itself, as it always was
            pass


def sweep_variants(overrides: list[str]) -> list[list[str]]:
    """One-config versions of a multirun's overrides: every swept key at its first value, then each other value of
    each swept key in turn. Sweeps Hydra cannot list (intervals, for other sweepers) are left out."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed: list[str | None] = []
    swept: list[tuple[int, str, list[str]]] = []
    for i, override in enumerate(parsed):
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        fixed.append(None)
        if override.is_discrete_sweep():
            values = [_value_text(v) for v in override.sweep_iterator()]
            if values:
                swept.append((i, override.get_key_element(), values))

    def variant(choice: dict[int, str]) -> list[str]:
        line = dict(enumerate(fixed))
        for i, key, values in swept:
            line[i] = f"{key}={choice.get(i, values[0])}"
        return [text for _, text in sorted(line.items()) if text is not None]

    out = [variant({})]
    for i, _, values in swept:
        for value in values[1:]:
            if len(out) >= MAX_SWEEP_COMPOSES:
                return out
            out.append(variant({i: value}))
    return out


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return quoted_value(value) if re.search(r"[\s,'\"\[\]{}()=:$]", value) else value
    return "null" if value is None else str(value)


def _preflight_multirun(overrides: list[str]) -> None:
    for variant in sweep_variants(overrides):
        cfg = compose_config(variant)
        problem = unusable_directory(Path(str(cfg.hydra.sweep.dir)))
        if problem:
            raise ConfigError(f"hydra.sweep.dir={cfg.hydra.sweep.dir} cannot hold a sweep: {problem}; choose another "
                              f"hydra.sweep.dir")
        if OmegaConf.select(cfg, "hydra.runtime.choices.hydra/sweeper") == "llmzero":
            batch = OmegaConf.select(cfg, "hydra.sweeper.max_batch_size")
            if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
                raise ConfigError(f"hydra.sweeper.max_batch_size={batch!r} is not valid: expected null (every phase "
                                  f"of a round in one batch) or an int ≥ 1")
        _check_settings(cfg)


def compose_config(overrides: list[str]) -> DictConfig:
    try:
        return _compose(overrides)
    except OverrideParseException as exc:
        lines = [ln.strip() for ln in exc.message.splitlines()]
        reason = next((ln for ln in lines if ln and ln != "^" and not ln.startswith(("See https:", "Error parsing"))),
                      "")
        raise ConfigError(f"cannot read the override {exc.override!r}: {reason}. Write key=value, and quote a value "
                          f"holding characters of the override grammar, as in 'search.dir=\"~/runs/x\"' "
                          f"(https://hydra.cc/docs/advanced/override_grammar/basic)") from None
    except MissingConfigException as exc:
        raise ConfigError(_missing_option(exc)) from None
    except Exception as exc:  # noqa: BLE001 - Hydra wraps OmegaConf's errors in several exception types
        raise ConfigError(_explain(exc, overrides)) from None


def _compose(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None, job_name="llmzero"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def _missing_option(exc: MissingConfigException) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, name = missing.rpartition("/")
    options = [o for o in (exc.options or []) if not o.startswith(SCHEMA_PREFIX)]
    if group == "recipe":
        return (f"recipe={name} is not valid: expected the name of a shipped recipe, one of {options} (in recipes/), "
                f"or the path of a recipe file (a recipe.yaml a search wrote)")
    if group and options:
        return f"{group}={name} is not valid: expected one of {options} (presets in conf/{group}/)"
    return str(exc).splitlines()[0]


def _explain(exc: Exception, overrides: list[str]) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    key = getattr(cause, "full_key", None)
    first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    if not key:
        return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    typed = _override_text(overrides, key) or key
    if "not in" in first:  # Hydra's struct check: a key the schema does not have
        return f"{typed} is not valid: {key} is not a setting{_nearest(overrides, key)}"
    return f"{typed} is not valid: {first}"


def _names(override: object, key: str) -> bool:
    """Whether an override sets `key` or something under it (`sweeper.grid.x.values=` sets sweeper.grid.x)."""
    name = getattr(override, "key_or_group", "")
    return name == key or name.startswith(key + ".")


def _override_text(overrides: list[str], key: str) -> str | None:
    typed = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if _names(o, key)]
    return typed[-1] if typed else None  # the last one is the one Hydra applies


def _nearest(overrides: list[str], key: str) -> str:
    """The nearest allowed names, read from the config composed without the offending override."""
    parent, _, leaf = key.rpartition(".")
    others = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not _names(o, key)]
    try:
        composed = _compose(others)
    except Exception:  # noqa: BLE001 - a second mistake; the first one is reported as it is
        return ""
    # a sweep's parameters are hyperparameters of the search's space, whatever the default sweep lists
    node = OmegaConf.select(composed, "search.space" if parent in SWEEP_SECTIONS else parent) if parent else composed
    if not isinstance(node, DictConfig):
        return ""
    names = [str(k) for k in node.keys() if str(k) != "hydra"]
    near = difflib.get_close_matches(leaf, names, n=3)
    where = parent or "the top level"
    hint = f"; did you mean {' or '.join(f'{parent}.{n}' if parent else n for n in near)}?" if near else ""
    return f"{hint} (allowed under {where}: {sorted(names)})"


# ---- directories --------------------------------------------------------------------------------
def check_directories(cfg: DictConfig) -> None:
    resume = cfg.search.resume
    problem = resume_problem(str(resume)) if resume else None
    if problem:
        raise ConfigError(problem)
    key = "search.dir" if cfg.search.dir else ("search.resume" if resume else "hydra.run.dir")
    problem = unusable_directory(Path(str(cfg.hydra.run.dir)))
    if problem:
        raise ConfigError(f"{key}={cfg.hydra.run.dir} cannot hold a search: {problem}; choose another {key}")
    wandb = cfg.get("wandb") or {}
    if wandb.get("dir") and str(wandb.get("mode")) != "disabled":
        problem = unusable_directory(Path(str(wandb.dir)).expanduser())
        if problem:
            raise ConfigError(f"wandb.dir={wandb.dir} cannot hold W&B runs: {problem}; choose another wandb.dir, "
                              f"or wandb.mode=disabled")


def unusable_directory(path: Path) -> str | None:
    """Why `path` cannot be (or become) a writable directory, or None. Hydra creates it next anyway; creating
    it here, and a file in it, is the one test that also holds for root and for read-only mounts."""
    path = path.absolute()
    if path.exists() and not path.is_dir():
        return f"{path} is a file"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, so nothing can be created under it"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"{exc.strerror or exc} ({exc.filename or path}): it cannot be written"
    return None

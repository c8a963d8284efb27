"""What `model.path` names, as a path or hub id `from_pretrained` can load.

`model.path` in the config is one of
    builtin:tiny        a small Qwen3 warm-started on the task: shipped for the default task (embedded.py), else
                        built offline and cached (tiny.py)
    /a/local/directory  a saved model (save_pretrained layout)
    Qwen/Qwen3-4B       a Hugging Face hub id, passed to from_pretrained unchanged
"""

from __future__ import annotations

import os
from typing import Any

BUILTIN_PREFIX = "builtin:"


def _builtin(model_cfg: dict[str, Any], task: Any) -> str:
    path = str(model_cfg["path"])
    name = path[len(BUILTIN_PREFIX):]
    if name != "tiny":
        raise ValueError(f"model.path={path!r}: unknown builtin model {name!r}; known: builtin:tiny")
    if task is None:
        raise ValueError("model.path=builtin:tiny is built for a task, but no task was given")
    return name


def resolve_model_path(model_cfg: dict[str, Any], task: Any = None) -> str:
    """The path or hub id that `from_pretrained` should load for this model config (a builtin is built first)."""
    path = str(model_cfg["path"])
    if path.startswith(BUILTIN_PREFIX):
        _builtin(model_cfg, task)
        from .embedded import shipped_for
        from .tiny import ensure_tiny_model, resolve_options

        options = resolve_options(dict(model_cfg.get("build") or {}))
        return str(shipped_for(task, options) or ensure_tiny_model(task, options))
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        return os.path.abspath(expanded)
    return path  # a hub id; from_pretrained reports its own error if it cannot be fetched


def model_path_problem(model_cfg: dict[str, Any]) -> str | None:
    """Why `model.path` can name no model, found without loading anything (a phase would fail on it days in)."""
    path = str(model_cfg.get("path") or "")
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX):]
        if name != "tiny":
            return f"model.path={path!r} is not valid: unknown builtin {name!r}; known: builtin:tiny"
        return _shipped_problem(model_cfg)
    if os.path.isdir(os.path.expanduser(path)):
        return None
    if path.startswith(("/", "./", "../", "~")) or os.sep + os.sep in path:
        return (f"model.path={path!r} is not valid: no such directory (a local model is a save_pretrained "
                f"directory; a hub id looks like Qwen/Qwen3-4B)")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(path)
    except HFValidationError as exc:
        return f"model.path={path!r} is not valid: neither a local directory nor a Hugging Face hub id ({exc})"
    return None


def model_unavailable(model_cfg: dict[str, Any]) -> str | None:
    """Why the hub model of `model.path` cannot be loaded on this machine: not in its Hugging Face cache, and the
    hub unreachable (or offline mode set). Asked once before a search whose phases load it here, so an offline
    machine ends with this line instead of running the search and failing at its last step. None for a builtin, a
    local directory, a cached model, or a hub that answers."""
    path = str(model_cfg.get("path") or "")
    if not path or path.startswith(BUILTIN_PREFIX) or os.path.isdir(os.path.expanduser(path)):
        return None
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(path, "config.json"), str):
            return None
    except ValueError:  # not a repo id: model_path_problem says so
        return None
    from ..tasks.hub import hub_unreachable

    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else hub_unreachable()
    if why is None:
        return None
    return (f"model.path={path} is not in this machine's Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}: "
            f"download it where there is network (huggingface-cli download {path}) into that cache, or give "
            f"model.path=<a local directory holding the model>")


def _shipped_problem(model_cfg: dict[str, Any]) -> str | None:
    """Why the shipped model these builder options select cannot be used (a damaged file), found before any phase."""
    from .embedded import DamagedModelError, uses_shipped, verify
    from .tiny import resolve_options

    try:
        if uses_shipped(resolve_options(dict(model_cfg.get("build") or {}))):
            verify()
    except DamagedModelError as exc:
        return f"model.path={model_cfg['path']}: {exc}"
    except ValueError as exc:  # an unknown builder option, named by resolve_options
        return str(exc)
    return None


def builtin_is_cached(model_cfg: dict[str, Any], task: Any) -> bool:
    """Whether a builtin model is already built for this task and these options (no build needed)."""
    _builtin(model_cfg, task)
    from .embedded import shipped_for
    from .tiny import cached_tiny_model, resolve_options

    options = resolve_options(dict(model_cfg.get("build") or {}))
    return shipped_for(task, options) is not None or cached_tiny_model(task, options) is not None

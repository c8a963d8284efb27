"""Overrides checked against the installed verl before anything runs: composed with Hydra's compose API against verl's
own `verl/trainer/config/ppo_trainer.yaml`, then validated by verl's `validate_config` and its config dataclasses.

A key verl does not have, a value of the wrong type or a combination verl refuses (batch sizes that do not divide over
the GPUs, a clip ratio out of range, ...) is one VerlConfigError naming it, raised in the search process before a
phase is submitted, instead of a traceback on a GPU node minutes later.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any, Sequence

EXTRA_HINT = "pip install 'llmzero[verl]'"
# Sections verl turns into its config dataclasses, whose __post_init__ checks run here too (the model section is left
# out: building HFModelConfig loads the model's files; verl builds its reward section differently).
DATACLASS_SECTIONS = ("algorithm", "actor_rollout_ref.rollout")


class VerlConfigError(ValueError):
    """Overrides that the installed verl refuses; the message names what and why."""


def verl_config_dir() -> Path:
    """The installed verl's trainer config folder; VerlConfigError with the install command when verl is absent."""
    try:
        import verl
    except ImportError as exc:
        raise VerlConfigError(f"trainer=verl needs the verl package, which is not installed here ({exc}); install it "
                              f"with: {EXTRA_HINT}") from None
    folder = Path(verl.__file__).resolve().parent / "trainer" / "config"
    if not (folder / "ppo_trainer.yaml").is_file():
        raise VerlConfigError(f"the installed verl {getattr(verl, '__version__', '?')} has no "
                              f"trainer/config/ppo_trainer.yaml at {folder}; install a supported one: {EXTRA_HINT}")
    return folder


@contextlib.contextmanager
def _own_hydra() -> Any:
    """Hydra's global state set aside: this may run inside our own @hydra.main app, whose state must survive."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton

    saved = Singleton.get_state()
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        Singleton.set_state(saved)


def compose(overrides: Sequence[str]) -> Any:
    """verl's ppo_trainer config with `overrides` applied (a DictConfig); VerlConfigError when Hydra refuses one."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    folder = verl_config_dir()
    with _own_hydra():
        try:
            with initialize_config_dir(config_dir=str(folder), version_base=None):
                return hydra_compose(config_name="ppo_trainer", overrides=list(overrides))
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            raise VerlConfigError(f"verl's ppo_trainer.yaml refuses the overrides: {_message(exc)}") from None


def validate(cfg: Any) -> None:
    """verl's own checks of a composed config (what main_ppo runs before it starts Ray), quietly."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    from omegaconf import OmegaConf

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Disabled critic as adv_estimator != gae": GRPO has none, as intended
            resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
            engine = str(resolved.actor_rollout_ref.rollout.name)
            if importlib.util.find_spec(engine) is None:
                # verl's LoRA check for the rollout engine imports the engine itself; where it is not installed (the
                # search's own machine) that check is left to the phase, which runs all of this again on its node.
                resolved.actor_rollout_ref.model.lora.merge = True
            validate_config(config=resolved, use_reference_policy=need_reference_policy(resolved),
                            use_critic=need_critic(resolved))
            for section in DATACLASS_SECTIONS:
                node = OmegaConf.select(resolved, section)
                if node is not None and "_target_" in node:
                    omega_conf_to_dataclass(node)
    except Exception as exc:  # noqa: BLE001 - verl signals refusals with assert, ValueError and friends
        raise VerlConfigError(f"verl refuses this configuration: {_message(exc)}") from None


def checked(overrides: Sequence[str]) -> Any:
    """compose() then validate(): the config verl would run, or VerlConfigError."""
    cfg = compose(overrides)
    validate(cfg)
    return cfg


def _message(exc: BaseException) -> str:
    """The first line of each exception in the chain, outermost first; Hydra's 'Error in call to target' wrappers,
    which say nothing of the cause, are left out."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        text = " ".join(str(seen).strip().splitlines()[:1]).strip()
        if text and not text.startswith("Error in call to target") and text not in parts:
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    return " — ".join(parts) or type(exc).__name__

"""`python -m llmzero [overrides]`: run (or resume) an adaptive-strategy search, replay a recipe (`recipe=`), or
run a static baseline (`sweeper.mode=grid|random`).

Exit codes and error messages: llmzero/cli_errors.py. Under `-m` (Hydra's multirun) each job of Hydra's own
sweeper is a search of its own in <sweep dir>/<job number>, and returns its best validation score; each job of the
llmzero sweeper (`hydra/sweeper=llmzero`) runs one phase (`phase_spec=`) of the sweep's single search.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .cli_errors import EXIT_REFUSED, Reported, fail
from .config.schema import ConfigError
from .config.hydra_store import register_configs
from .paths import conf_dir
from .preflight import expand_recipe_path, preflight

register_configs()


def _task(cfg: DictConfig) -> float | None:
    from .app import load_resumed_config, run_search

    with Reported() as report:
        hc = HydraConfig.get()
        command = list(hc.overrides.task)
        if cfg.search.resume:
            cfg = load_resumed_config(cfg, command)
            search_dir = Path(cfg.search.dir).expanduser().resolve()
        elif cfg.search.dir and hc.mode != RunMode.MULTIRUN:
            search_dir = Path(cfg.search.dir).expanduser().resolve()
        else:  # a multirun job's own folder (search.dir names the sweep dir then)
            search_dir = Path(hc.runtime.output_dir).expanduser().resolve()
        report.search_dir = search_dir
        result = run_search(cfg, search_dir, command=command)
        return result.best.best_val if result.best is not None else None
    return None  # not reached: Reported ends the process on an error


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
def main(cfg: DictConfig) -> float | None:
    OmegaConf.set_readonly(cfg, False)
    if cfg.get("phase_spec"):  # one phase of the llmzero sweeper's search: errors go back to the sweeper
        from .executors.phase_job import run_phase_job

        return run_phase_job(cfg, Path(HydraConfig.get().runtime.output_dir))
    return _task(cfg)


def cli() -> None:
    """The console entry point: our own checks of the command line, then Hydra."""
    try:
        sys.argv[1:] = expand_recipe_path(sys.argv[1:])
        preflight(sys.argv[1:])
    except ConfigError as exc:
        fail(str(exc), EXIT_REFUSED)
    main()


if __name__ == "__main__":
    cli()

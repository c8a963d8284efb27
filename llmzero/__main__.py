"""`python -m llmzero [overrides]`: run (or resume) an adaptive-strategy search."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .config.store import register_configs
from .paths import conf_dir

register_configs()


class Terminated(BaseException):
    """SIGTERM (what `timeout`, SLURM and Kubernetes send): unwinds like Ctrl-C, so the search saves its state,
    stops its phases and releases the directory's lock on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _task(cfg: DictConfig) -> None:
    from hydra.errors import InstantiationException

    from .agents.base import AgentUnavailable
    from .app import ConfigError, load_resumed_config, run_search
    from .hparams.space import HParamError
    from .state.lock import SearchLockedError
    from .tree.journal import JournalError

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        hc = HydraConfig.get()
        if cfg.search.resume:
            cfg = load_resumed_config(cfg, list(hc.overrides.task))
            search_dir = Path(cfg.search.dir)
        else:
            search_dir = Path(cfg.search.dir) if cfg.search.dir else Path(hc.runtime.output_dir)
        run_search(cfg, search_dir.resolve())
    except (ConfigError, HParamError, SearchLockedError, InstantiationException, JournalError) as exc:
        print(f"llmzero: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except AgentUnavailable as exc:
        print(f"llmzero: error: {exc}\nllmzero: the search state is saved; rerun the same command to resume "
              f"once the provider answers (or set agent.on_failure=fallback)", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:
        print("llmzero: interrupted; state is saved — rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except Terminated:
        print("llmzero: terminated (SIGTERM); state is saved — rerun the same command to resume", file=sys.stderr)
        sys.exit(143)


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    OmegaConf.set_readonly(cfg, False)
    _task(cfg)


if __name__ == "__main__":
    main()

"""`python -m llmzero [overrides]`: run (or resume) an adaptive-strategy search.

Exit codes: 0 done; 1 an unexpected error (a bug: its traceback is saved to a file); 2 a setting or the search directory is refused (before anything runs);
3 the agent provider is unavailable; 4 a filesystem error (no space, read-only, permissions)
ended the search; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). In every case but 0 the
state is saved as far as the filesystem allowed, and rerunning the same command resumes.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .atomic import is_temp_file
from .config.schema import ConfigError
from .config.store import register_configs
from .paths import conf_dir
from .preflight import preflight

register_configs()

EXIT_BUG, EXIT_REFUSED, EXIT_AGENT, EXIT_FILESYSTEM, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 3, 4, 130, 143
RESUME_HINT = "state is saved — rerun the same command to resume"


class Terminated(BaseException):
    """SIGTERM (what `timeout`, SLURM and Kubernetes send): unwinds like Ctrl-C, so the search saves its state,
    stops its phases and releases the directory's lock on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _fail(message: str, code: int) -> None:
    print(f"llmzero: error: {message}", file=sys.stderr)
    sys.exit(code)


def _task(cfg: DictConfig) -> None:
    from hydra.errors import InstantiationException

    from .agents.base import AgentUnavailable
    from .app import load_resumed_config, run_search
    from .hparams.space import HParamError
    from .state.lock import SearchLockedError
    from .tree.journal import JournalError

    signal.signal(signal.SIGTERM, _on_sigterm)
    search_dir: Path | None = None
    # A handler that cannot write (Hydra's job log on a full or read-only disk) must not print a traceback.
    logging.raiseExceptions = False
    try:
        hc = HydraConfig.get()
        command = list(hc.overrides.task)
        if cfg.search.resume:
            cfg = load_resumed_config(cfg, command)
            search_dir = Path(cfg.search.dir).expanduser().resolve()
        else:
            search_dir = (Path(cfg.search.dir) if cfg.search.dir else Path(hc.runtime.output_dir)).expanduser().resolve()
        run_search(cfg, search_dir, command=command)
    except InstantiationException as exc:  # a backend refused its options: its own message, without Hydra's frame
        _fail(str(exc.__cause__) if isinstance(exc.__cause__, ValueError) else str(exc), EXIT_REFUSED)
    except (ConfigError, HParamError, SearchLockedError, JournalError) as exc:
        _fail(str(exc), EXIT_REFUSED)
    except AgentUnavailable as exc:
        _fail(f"{exc}\nllmzero: the search state is saved; rerun the same command to resume once the provider "
              f"answers (or set agent.on_failure=fallback)", EXIT_AGENT)
    except OSError as exc:
        path = Path(str(exc.filename)) if exc.filename else None
        if path is not None and is_temp_file(path):
            path = path.parent  # an atomic write's temporary file: the directory is what the user knows
        where = f" (writing in {path})" if path else ""
        _fail(f"filesystem error: {exc.strerror or exc}{where}\nllmzero: the search state is saved up to the last "
              f"write that succeeded; free space or fix the permissions, then rerun the same command to resume",
              EXIT_FILESYSTEM)
    except KeyboardInterrupt:
        print(f"llmzero: interrupted; {RESUME_HINT}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        print(f"llmzero: terminated (SIGTERM); {RESUME_HINT}", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    except Exception as exc:  # noqa: BLE001 - a bug (ours or a plug-in's): one message, the traceback kept
        saved = _save_traceback(search_dir)
        _fail(f"unexpected {type(exc).__name__}: {exc}\nllmzero: the search state is saved; the traceback is in "
              f"{saved} (attach it to a bug report); rerun the same command to resume", EXIT_BUG)


def _save_traceback(search_dir: Path | None) -> str:
    text = traceback.format_exc()
    for where in ([search_dir] if search_dir else []) + [Path(tempfile.gettempdir())]:
        try:
            path = where / f"llmzero-crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
            path.write_text(text, encoding="utf-8")
            return str(path)
        except OSError:
            continue
    return "(nowhere: no directory could be written)"


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    OmegaConf.set_readonly(cfg, False)
    _task(cfg)


def cli() -> None:
    """The console entry point: our own checks of the command line, then Hydra."""
    try:
        preflight(sys.argv[1:])
    except ConfigError as exc:
        _fail(str(exc), EXIT_REFUSED)
    main()


if __name__ == "__main__":
    cli()

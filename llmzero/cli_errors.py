"""How a command ends when something goes wrong: one `llmzero: error:` line and an exit code, never a traceback.

Shared by `python -m llmzero` and the Hydra sweeper (plugins/hydra_plugins/llmzero_sweeper), which run the same
search. Exit codes: 1 an unexpected error (a bug: its traceback is saved to a file); 2 a setting or the search
directory is refused (before anything runs); 3 the agent provider is unavailable; 4 a filesystem error (no space,
read-only, permissions); 5 a phase could not be launched (no scheduler, an unreachable cluster); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). In every case but 0 the state is saved
as far as the filesystem allowed, and rerunning the same command resumes.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType

from .atomic import is_temp_file

EXIT_BUG, EXIT_REFUSED, EXIT_AGENT, EXIT_FILESYSTEM, EXIT_LAUNCH, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 3, 4, 5, 130, 143
RESUME_HINT = "state is saved — rerun the same command to resume"


class Terminated(BaseException):
    """SIGTERM (what `timeout`, SLURM and Kubernetes send): unwinds like Ctrl-C, so the search saves its state,
    stops its phases and releases the directory's lock on the way out."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def fail(message: str, code: int) -> None:
    print(f"llmzero: error: {message}", file=sys.stderr)
    sys.exit(code)


class Reported:
    """`with Reported() as report:` around a search: every known failure becomes one message and its exit code.
    Set `report.search_dir` once it is known, so a bug's traceback is saved there."""

    def __init__(self) -> None:
        self.search_dir: Path | None = None

    def __enter__(self) -> "Reported":
        if threading.current_thread() is threading.main_thread():  # signals can only be handled there
            signal.signal(signal.SIGTERM, _on_sigterm)
        # A handler that cannot write (Hydra's job log on a full or read-only disk) must not print a traceback.
        logging.raiseExceptions = False
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        if exc is None or isinstance(exc, SystemExit):
            return False
        from hydra.errors import InstantiationException

        from .agents.base import AgentUnavailable
        from .config.schema import ConfigError
        from .executors.base import LaunchFailed
        from .hparams.space import HParamError
        from .state.lock import SearchLockedError
        from .tree.journal import JournalError

        if isinstance(exc, InstantiationException):  # a backend refused its options: its own message
            fail(str(exc.__cause__) if isinstance(exc.__cause__, ValueError) else str(exc), EXIT_REFUSED)
        elif isinstance(exc, (ConfigError, HParamError, SearchLockedError, JournalError)):
            fail(str(exc), EXIT_REFUSED)
        elif isinstance(exc, LaunchFailed):
            fail(f"{exc}\nllmzero: the search state is saved", EXIT_LAUNCH)
        elif isinstance(exc, AgentUnavailable):
            fail(f"{exc}\nllmzero: the search state is saved; rerun the same command to resume once the provider "
                 f"answers (or set agent.on_failure=fallback)", EXIT_AGENT)
        elif isinstance(exc, OSError):
            path = Path(str(exc.filename)) if exc.filename else None
            if path is not None and is_temp_file(path):
                path = path.parent  # an atomic write's temporary file: the directory is what the user knows
            where = f" (writing in {path})" if path else ""
            fail(f"filesystem error: {exc.strerror or exc}{where}\nllmzero: the search state is saved up to the last "
                 f"write that succeeded; free space or fix the permissions, then rerun the same command to resume",
                 EXIT_FILESYSTEM)
        elif isinstance(exc, KeyboardInterrupt):
            print(f"llmzero: interrupted; {RESUME_HINT}", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        elif isinstance(exc, Terminated):
            print(f"llmzero: terminated (SIGTERM); {RESUME_HINT}", file=sys.stderr)
            sys.exit(EXIT_TERMINATED)
        elif isinstance(exc, Exception):  # a bug (ours or a plug-in's): one message, the traceback kept
            saved = _save_traceback(self.search_dir, (kind, exc, tb))
            fail(f"unexpected {type(exc).__name__}: {exc}\nllmzero: the search state is saved; the traceback is in "
                 f"{saved} (attach it to a bug report); rerun the same command to resume", EXIT_BUG)
        return False


def _save_traceback(search_dir: Path | None, info: tuple) -> str:
    text = "".join(traceback.format_exception(*info))
    for where in ([search_dir] if search_dir else []) + [Path(tempfile.gettempdir())]:
        try:
            path = where / f"llmzero-crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
            path.write_text(text, encoding="utf-8")
            return str(path)
        except OSError:
            continue
    return "(nowhere: no directory could be written)"

"""A phase running in its own process: the PhaseHandle shared by the TRL and verl backends.

The search only talks to the process through files in the phase directory, so an OOM, a NaN or
a segfault fails the node, not the search:

    metrics.jsonl   one flushed line per step (tailed live)
    log.txt         the process's stdout and stderr
    result.json     written last by the phase: {"status": ..., "error": ..., "steps_done": ...}
    checkpoints/    step_<k>/ adapter checkpoints, complete once COMPLETE exists

A process that dies without writing result.json is a failed phase whose error is its exit status
and the tail of its log. Arguments are passed as a list (never through a shell), so no value
from a config or an agent is ever interpreted by a shell.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic
from ..metrics import names
from ..metrics.store import MetricSeries, MetricsTail
from ..state.phase_dir import LOG_FILE, METRICS_FILE, PHASE_CONFIG, RESULT_FILE, STOP_FILE, list_checkpoints, log_tail, \
    prepare_for_start
from ..tree import PhaseResult, PhaseStatus


def write_phase_config(spec: Any, task: dict[str, Any], model: dict[str, Any], trainer: dict[str, Any]) -> Path:
    """Before a phase process starts (on whatever machine): its directory made ready for this attempt
    (prepare_for_start) and the one file it reads, which names everything it runs; returns that file."""
    prepare_for_start(spec.dir, spec.resume_own)
    path = spec.dir / PHASE_CONFIG
    write_json_atomic(path, {"spec": spec.to_dict(), "task": task, "model": model, "trainer": trainer})
    return path


def result_from_files(phase_dir: Path, returncode: int | None, wall_s: float) -> PhaseResult:
    """Build the PhaseResult from what the phase left on disk; best val and test come from metrics.jsonl."""
    metrics = MetricSeries.load(phase_dir / METRICS_FILE)
    raw: dict[str, Any] = {}
    try:
        raw = json.loads((phase_dir / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        pass
    status = raw.get("status")
    error = raw.get("error")
    if status not in PhaseStatus.ALL:
        status = PhaseStatus.FAILED
        error = error or (f"phase process exited with status {returncode} without writing {RESULT_FILE}"
                          + (" (killed by a signal: out of memory?)" if returncode is not None and returncode < 0 else ""))
    best_val, best_step = metrics.best_val()
    test = metrics.at_step(names.TEST_SCORE, best_step) if best_step is not None else None
    return PhaseResult(
        status=status, steps_done=int(raw.get("steps_done") or metrics.last_step()), best_val=best_val,
        best_step=best_step, val_subscores=metrics.val_subscores(best_step), test_score=test, checkpoints=list_checkpoints(phase_dir),
        error=error, log_tail=log_tail(phase_dir / LOG_FILE) if status == PhaseStatus.FAILED else "",
        wall_s=wall_s,
    )


class SubprocessPhase:
    """PhaseHandle for a phase run as `argv` (e.g. [python, -m, llmzero.trainers.trl.phase, spec])."""

    def __init__(self, argv: list[str], phase_dir: Path | str, env: dict[str, str] | None = None):
        self.phase_dir = Path(phase_dir)
        self.phase_dir.mkdir(parents=True, exist_ok=True)
        (self.phase_dir / RESULT_FILE).unlink(missing_ok=True)  # a relaunch must not read the last attempt's
        self._tail = MetricsTail(self.phase_dir / METRICS_FILE)
        self._t0 = time.monotonic()
        self._log = open(self.phase_dir / LOG_FILE, "a", encoding="utf-8")
        self._proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        self._wall: float | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> list[dict[str, Any]]:
        return self._tail.poll()

    def done(self) -> bool:
        if self._proc.poll() is None:
            return False
        if self._wall is None:
            self._wall = time.monotonic() - self._t0
            self._log.close()
        return True

    def stop(self, reason: str = "") -> None:
        """Graceful: the phase saves a final checkpoint, writes status early_stopped and exits 0."""
        if self._proc.poll() is None:
            (self.phase_dir / STOP_FILE).write_text(reason + "\n")
            self._proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()
        self.done()

    def wait(self, timeout: float | None = None) -> int:
        rc = self._proc.wait(timeout)
        self.done()
        return rc

    def result(self) -> PhaseResult:
        if not self.done():
            raise RuntimeError("result() called before the phase process ended")
        return result_from_files(self.phase_dir, self._proc.returncode, self._wall or 0.0)

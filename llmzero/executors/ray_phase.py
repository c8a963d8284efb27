"""A phase running as a Ray job: the PhaseHandle that cluster=ray hands the engine.

Metrics, the log and checkpoints are read from the phase directory on shared storage, exactly as for a local
phase; only the process's life comes from Ray (JobSubmissionClient.get_job_info). Rules:

- stop(reason) writes STOP (the phase saves and ends early_stopped at its next step); if the job is still
  running `stop_grace_s` later, stop_job ends it, and what it saved counts as early-stopped.
- A job stopped by anyone else (`ray job stop`, the dashboard), or failed, or gone from Ray (the head lost it),
  is a failed phase whose error is Ray's own status message; the error analyzer reads it like any failure.
- Only the job server's 404 means "gone". Any other error reply (a 500 from a busy dashboard, a 502 from a proxy)
  or no reply is a head that cannot answer now: the phase keeps running and is asked again. A head silent for
  UNREACHABLE_LIMIT_S ends the phase as failed, and the search asks Ray to stop the job on the way out, so a job
  that was in fact running does not go on holding its GPUs unwatched.
- Queued (PENDING: waiting for resources or for its runtime env) and running are told apart for the display.
- The phase is over when its result.json appears (written last by every phase entry point), without waiting for
  Ray to notice the process has exited (its job supervisor looks once a second): the next phase can be
  submitted meanwhile, and Ray starts it when the resources are free.
- Cost: the GPUs the job holds × its running time (from the first poll that sees it RUNNING, or Ray's start
  time when the search attached later, to Ray's end time), so search.max_gpu_hours means cluster GPU-hours.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Callable

from ..atomic import write_text_atomic
from ..metrics.store import MetricsTail
from ..state.phase_dir import LOG_FILE, METRICS_FILE, RESULT_FILE, STOP_FILE
from ..trainers.subprocess_phase import result_from_files
from ..tree import PhaseResult, PhaseStatus

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
STATUS_EVERY_S = 1.0  # a running job's status is asked at most this often; the files are read at every poll
OUTSIDE_STOP_WAIT_S = 15.0  # how long an unasked early stop waits for Ray to say who stopped the job
UNREACHABLE_LIMIT_S = 300.0  # a head that stays silent this long has lost the job, as far as the search can tell
KILL_WAIT_S = 30.0  # Ray sends SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s by default)


def brief(message: str | None, limit: int = 800) -> str:
    """Ray's status message without the logs and tracebacks it may append: its first line, and its last (the
    exception of a traceback, or the last line the job printed)."""
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    if not lines:
        return "no message from Ray"
    text = lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")
    return text[:limit]


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a job server's error reply, as Ray's JobSubmissionClient words its RuntimeError
    ("Request failed with status code 404: ..."), or None when the error names none."""
    found = re.search(r"status code (\d{3})", str(exc))
    return int(found.group(1)) if found else None


def job_unknown(exc: BaseException) -> bool:
    """The job server answered that it does not know the job (HTTP 404)."""
    code = http_status(exc)
    return code == 404 or (code is None and "does not exist" in str(exc))


def stop_job_quietly(client: Any, job_id: str) -> None:
    """Ask Ray to stop a job; a head that cannot answer cannot be told either (the caller's message names the job)."""
    try:
        client.stop_job(job_id)
    except (RuntimeError, OSError):
        pass


def job_status(info: Any) -> str:
    """A JobDetails' status as its plain name (RUNNING, SUCCEEDED, ...)."""
    return str(getattr(info.status, "value", info.status))


def _ms(value: Any) -> float | None:
    return float(value) / 1000.0 if value else None


class RayPhase:
    def __init__(self, client: Any, job_id: str, phase_dir: Path | str, *, gpus: float = 0.0,
                 stop_grace_s: float = 300.0, address: str = "", watch_start: bool = True) -> None:
        """`watch_start`: the job was just submitted, so the first poll that sees it RUNNING dates its start; a
        job found again after a restart of the search is dated by Ray's own start time instead."""
        self.client, self.job_id, self.phase_dir = client, job_id, Path(phase_dir)
        self.gpus, self.stop_grace_s, self.address = float(gpus), float(stop_grace_s), address
        self._tail = MetricsTail(self.phase_dir / METRICS_FILE)
        self._status = "PENDING"
        self._info: Any = None
        self._gone: str | None = None  # why the job can no longer be followed
        self._running_since: float | None = None
        self._stop_asked: float | None = None
        self._forced = False  # stop_job after the grace period
        self._silent_since: float | None = None
        self._watch_start = watch_start
        self._asked_at = 0.0  # when Ray was last asked for the job's status
        self._result_seen: float | None = None
        self._submit: Callable[[], None] | None = None  # set while the search's GPU gate holds the job back
        self._gate: Any = None

    def defer(self, submit: Callable[[], None], gate: Any) -> None:
        """Submit the job only once `gate` (gpu_gate.GpuGate) admits it; until then the phase is queued."""
        self._submit, self._gate = submit, gate
        gate.enqueue(self)

    @property
    def finished(self) -> bool:
        """The job no longer holds its resources: Ray has ended it, or it never reached Ray."""
        if self._gone is not None or self._status in TERMINAL:
            return True
        if self._submit is not None:
            return False
        self._refresh()
        return self._gone is not None or self._status in TERMINAL

    def fail(self, why: str) -> None:
        """The job never reached Ray (refused at submission): the phase is over, failed with `why`."""
        self._gone = why

    # -- PhaseHandle -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """'queued' while Ray has not started the job (no free resources, runtime env building), else 'running'."""
        return "queued" if self._status == "PENDING" and self._gone is None else "running"

    def poll(self) -> list[dict[str, Any]]:
        return self._tail.poll()

    def done(self) -> bool:
        self._refresh()
        if self._status in TERMINAL or self._gone is not None:
            return True
        if self._result_seen is None:
            if not (self.phase_dir / RESULT_FILE).exists():
                return False
            self._result_seen = time.time()
        # A phase that stopped early though the search never asked was sent SIGTERM by someone else (`ray job
        # stop`, a preemption): Ray's own word on it is worth a few seconds.
        unasked = self._stop_asked is None and self._result_status() == PhaseStatus.EARLY_STOPPED
        return not unasked or time.time() - self._result_seen > OUTSIDE_STOP_WAIT_S

    def stop(self, reason: str = "") -> None:
        if self._stop_asked is None:
            write_text_atomic(self.phase_dir / STOP_FILE, (reason or "stop requested") + "\n")
            self._stop_asked = time.time()

    def kill(self) -> None:
        """The search is ending: stop the job now and wait until Ray confirms, so no phase outlives it unwatched."""
        if self._submit is not None:
            self._submit, self._gone = None, "the search ended before the phase's turn for the GPUs came"
            return
        if self.done():
            return
        try:
            self.client.stop_job(self.job_id)
        except (RuntimeError, OSError):
            return
        deadline = time.monotonic() + KILL_WAIT_S
        while not self.done() and time.monotonic() < deadline:
            time.sleep(0.5)

    def result(self) -> PhaseResult:
        if not self.done():
            raise RuntimeError("result() called before the Ray job ended")
        info = self._info
        running_s = self._running_seconds()
        res = result_from_files(self.phase_dir, getattr(info, "driver_exit_code", None), running_s)
        status, error = res.status, res.error
        wrote_result = (self.phase_dir / RESULT_FILE).exists()
        message = brief(getattr(info, "message", None)) if self._status in TERMINAL else \
            "the phase was sent SIGTERM and ended early"
        if self._gone is not None:
            status, error = PhaseStatus.FAILED, self._gone
        elif self._stop_asked is None and (self._status == "STOPPED" or status == PhaseStatus.EARLY_STOPPED):
            status, error = PhaseStatus.FAILED, (f"Ray job {self.job_id} was stopped from outside the search "
                                                 f"(`ray job stop` or the dashboard): {message}")
        elif self._status == "STOPPED" and not wrote_result:
            # Our own stop_job after the grace period: the phase was told to stop and its checkpoints stand.
            status, error = PhaseStatus.EARLY_STOPPED, None
        elif self._status == "FAILED" and not wrote_result:
            status, error = PhaseStatus.FAILED, f"Ray job {self.job_id} failed: {message}"
        elif self._status == "SUCCEEDED" and not wrote_result:
            status, error = PhaseStatus.FAILED, (
                f"Ray job {self.job_id} succeeded but {self.phase_dir / RESULT_FILE} never appeared: the phase wrote its "
                "files on the worker's disk; search.dir must be on storage every Ray node mounts at the same path")
        log = res.log_tail
        if status == PhaseStatus.FAILED and not (self.phase_dir / LOG_FILE).exists():
            log = self._ray_logs()
        return dataclasses.replace(res, status=status, error=error, log_tail=log, wall_s=running_s,
                                   gpu_s=self.gpus * running_s)

    # -- Ray -------------------------------------------------------------------------------------
    def _result_status(self) -> str | None:
        try:
            return json.loads((self.phase_dir / RESULT_FILE).read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            return None

    def _refresh(self) -> None:
        if self._submit is not None:
            if not self._gate.admit(self):
                return
            submit, self._submit = self._submit, None
            try:
                submit()
            except (RuntimeError, OSError, ValueError) as exc:
                self._gone = f"Ray refused job {self.job_id}: {brief(str(exc))}"
                return
        now = time.time()
        # A queued job is asked at every poll, so its start (and its GPU-seconds) is dated to within a poll.
        recent = self._status != "PENDING" and now - self._asked_at < STATUS_EVERY_S
        if self._status in TERMINAL or self._gone is not None or recent:
            return
        self._asked_at = now
        try:
            info = self.client.get_job_info(self.job_id)
        except (RuntimeError, OSError) as exc:
            if isinstance(exc, RuntimeError) and job_unknown(exc):
                self._gone = (f"Ray job {self.job_id} is no longer known to the Ray cluster at {self.address} (the "
                              f"head restarted or the job was deleted): {brief(str(exc))}")
                return
            self._silent_since = self._silent_since or now
            if now - self._silent_since > UNREACHABLE_LIMIT_S:
                self._gone = (f"the Ray cluster at {self.address} has not answered for {UNREACHABLE_LIMIT_S:.0f} s "
                              f"about job {self.job_id}: {brief(str(exc))}; the search asked Ray to stop the job so it "
                              f"does not keep its GPUs (check with `ray job status {self.job_id}`)")
                self._stop_quietly()
            return
        self._silent_since = None
        self._info = info
        self._status = job_status(info)
        if self._status == "RUNNING" and self._running_since is None and self._watch_start:
            self._running_since = now
        if (self._stop_asked is not None and not self._forced and self._status not in TERMINAL
                and now - self._stop_asked > self.stop_grace_s):
            self._forced = True
            self._stop_quietly()

    def _stop_quietly(self) -> None:
        stop_job_quietly(self.client, self.job_id)

    def _running_seconds(self) -> float:
        info = self._info
        end = _ms(getattr(info, "end_time", None)) or time.time()
        start = self._running_since or _ms(getattr(info, "start_time", None)) or end
        return max(0.0, end - start)

    def _ray_logs(self, lines: int = 60) -> str:
        """`ray job logs`: the fallback when the phase never wrote log.txt (it never started, or wrote elsewhere)."""
        try:
            text = self.client.get_job_logs(self.job_id)
        except (RuntimeError, OSError) as exc:
            return f"(no log.txt, and Ray's job logs could not be read: {exc})"
        tail = "\n".join(str(text or "").splitlines()[-lines:])
        return tail or f"(no log.txt, and Ray holds no log for job {self.job_id}: its command never started)"

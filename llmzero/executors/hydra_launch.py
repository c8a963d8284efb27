"""Phases as Hydra jobs: the executor of the llmzero sweeper (`-m hydra/sweeper=llmzero`).

Each phase is one job of the configured launcher (basic, joblib, submitit for SLURM, ray), whose task function
runs that one phase (llmzero/executors/phase_job.py). `launcher.launch()` blocks until its whole batch has ended,
so it runs on a worker thread while the search's own loop goes on in the main thread: it tails the phase
directories, and the early stopper's STOP file reaches a job wherever it runs, through the shared filesystem.

- Batches: the phases launched in one round of the engine go out as one launcher call (flush); the next batch
  leaves when that one has ended, so with the basic launcher (jobs in this process, one after another) phases
  never share Hydra's process-wide state.
- Job numbers grow across batches and across reruns of the sweep (`initial_job_idx`, recorded in jobs.jsonl),
  so no job's output folder is ever reused.
- A job's outcome is read from its node's own phase directory, never from the job's output folder, which the
  launcher names and two jobs may share (`hydra.sweep.subdir=trial`); then its status: a failed job's
  return_value re-raises its exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import OmegaConf

from ..atomic import write_yaml_atomic
from ..config.hydra_store import quoted_value
from ..metrics.store import MetricsTail
from ..state.phase_dir import LOG_FILE, METRICS_FILE, STOP_FILE, log_tail
from ..trainers.base import PhaseHandle, PhaseSpec, TrainerBackend
from ..trainers.subprocess_phase import result_from_files
from ..tree import PhaseResult, PhaseStatus
from .base import LaunchFailed
from .phase_job import JOB_RESULT, read_job_result

JOBS_FILE = "jobs.jsonl"
KILL_WAIT_S = 10.0  # how long the search, when it ends, waits for a job to honour STOP


class LaunchedPhase:
    """The PhaseHandle of one phase sent to a Hydra launcher: files for metrics, the launcher's return for the end."""

    def __init__(self, spec: PhaseSpec) -> None:
        self.spec = spec
        self.phase_dir = spec.dir
        self._tail = MetricsTail(self.phase_dir / METRICS_FILE)
        self._sent = time.time()
        self._result: PhaseResult | None = None
        self._launch_error: str | None = None  # the launcher could not launch the job at all
        self.job_num: int | None = None
        self.job_dir: Path | None = None

    @property
    def state(self) -> str:
        """'queued' until the job has written to the phase directory (the launcher may run a batch's jobs in turn)."""
        if self._result is not None:
            return "running"
        for name in (METRICS_FILE, LOG_FILE):
            path = self.phase_dir / name
            if path.exists() and path.stat().st_mtime >= self._sent - 1:
                return "running"
        return "queued"

    def poll(self) -> list[dict[str, Any]]:
        return self._tail.poll()

    def done(self) -> bool:
        return self._result is not None or self._launch_error is not None

    def stop(self, reason: str = "") -> None:
        if self._result is None:
            (self.phase_dir / STOP_FILE).write_text((reason or "stop requested") + "\n")

    def kill(self) -> None:
        """The search is ending: ask the job to save and stop, and give it a moment (a rerun resumes the phase from
        its last checkpoint either way)."""
        self.stop("the search is ending")
        deadline = time.monotonic() + KILL_WAIT_S
        while not self.done() and time.monotonic() < deadline:
            time.sleep(0.2)

    def result(self) -> PhaseResult:
        if self._launch_error is not None:
            raise LaunchFailed(self._launch_error)
        if self._result is None:
            raise RuntimeError("result() called before the Hydra job ended")
        return self._result

    def launch_failed(self, why: str) -> None:
        """The launcher could not launch this job: no phase ran, which is no phase's failure (executors/base.py)."""
        self._launch_error = why

    def sent(self, job_num: int) -> None:
        """The executor gave the phase job number `job_num` and is sending it now."""
        self.job_num, self._sent = job_num, time.time()
        (self.phase_dir / JOB_RESULT).unlink(missing_ok=True)  # an earlier attempt's outcome is not this job's

    # -- called by the launch thread ------------------------------------------------------------
    def finish(self, ret: Any) -> None:
        from hydra.core.utils import JobStatus

        hydra_cfg = getattr(ret, "hydra_cfg", None)
        out = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir") if hydra_cfg is not None else None
        self.job_dir = Path(str(out)) if out else None
        found = read_job_result(self.phase_dir, self.spec.node_id)
        status = getattr(ret, "status", JobStatus.UNKNOWN)
        if status == JobStatus.COMPLETED:
            self._result = found or result_from_files(self.phase_dir, 0, time.time() - self._sent)
        elif found is not None and found.status == PhaseStatus.FAILED:
            self._result = found
        else:
            self.fail(f"Hydra job {self.job_num} {_job_error(ret, status)}")

    def fail(self, why: str) -> None:
        res = result_from_files(self.phase_dir, None, time.time() - self._sent)
        self._result = dataclasses.replace(res, status=PhaseStatus.FAILED, error=why,
                                           log_tail=log_tail(self.phase_dir / LOG_FILE))


def job_overrides(sweep_overrides: Sequence[str], spec: PhaseSpec) -> list[str]:
    """A job's command line: the sweep's own overrides, the phase's hyperparameters (so the job's
    .hydra/overrides.yaml and cfg.hparams say what it trained, though the job reads them from its spec) and the spec."""
    own = [f"++hparams.{key}={_override_value(value)}" for key, value in sorted(spec.hparams.items())]
    kept = [o for o in sweep_overrides if not o.lstrip("+").startswith("hparams.")]
    return [*kept, *own, f"phase_spec={quoted_value(str(spec.dir / 'spec.yaml'))}"]


def _override_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return quoted_value(str(value))


def _job_error(ret: Any, status: Any) -> str:
    from hydra.core.utils import JobStatus

    if status != JobStatus.FAILED:
        return f"ended with status {getattr(status, 'name', status)} and no result"
    try:  # return_value re-raises the job's exception, after writing a line of its own to stderr
        with contextlib.redirect_stderr(io.StringIO()):
            ret.return_value
    except BaseException as exc:  # noqa: BLE001 - whatever the job raised is its error
        return f"failed: {type(exc).__name__}: {exc}"
    return "failed"


class HydraLaunchExecutor:
    """Executor whose phases are jobs of a Hydra launcher. `job_overrides` are the sweep's own overrides, which
    every job repeats so it composes the same config as the search."""

    name = "hydra"

    def __init__(self, launcher: Any, job_overrides: Sequence[str], search_dir: Path,
                 max_batch_size: int | None = None, launcher_name: str = "") -> None:
        self.launcher, self.job_overrides = launcher, list(job_overrides)
        self.launcher_name = launcher_name or type(launcher).__name__
        self.search_dir, self.max_batch_size = Path(search_dir), max_batch_size
        self._pending: list[LaunchedPhase] = []
        self._thread: threading.Thread | None = None
        self._batches: queue.Queue[tuple[list[LaunchedPhase], list[list[str]], int]] = queue.Queue()
        self._out = threading.Event()  # a batch is out: the next one leaves when it has ended
        self.returns: list[list[Any]] = []  # every batch's JobReturns, in launch order

    def check(self, trainer: TrainerBackend, search_dir: Path, say: Callable[[str], None] | None = None) -> list[str]:
        return []

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> PhaseHandle:
        write_yaml_atomic(spec.dir / "spec.yaml", spec.to_dict())
        handle = LaunchedPhase(spec)
        self._pending.append(handle)
        return handle

    def flush(self) -> None:
        if not self._pending or self._out.is_set():
            return  # the next batch leaves when this one has ended
        size = self.max_batch_size or len(self._pending)
        batch, self._pending = self._pending[:size], self._pending[size:]
        first = self.next_job_number()
        for i, handle in enumerate(batch):
            handle.sent(first + i)
            self._record({"job": handle.job_num, "node": handle.spec.node_id, "event": "launched",
                          "launcher": self.launcher_name})
        overrides = [job_overrides(self.job_overrides, h.spec) for h in batch]
        self._out.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True, name="llmzero-hydra-launch")
            self._thread.start()
        self._batches.put((batch, overrides, first))

    def _serve(self) -> None:
        # One thread launches every batch, for the whole search: the Ray launcher's ray.init starts Ray's daemons
        # from it, and Linux kills them when the thread that started them ends (Ray asks for PR_SET_PDEATHSIG,
        # which follows the parent thread, not the process), so a thread per batch lost the cluster after one.
        while True:
            batch, overrides, first = self._batches.get()
            try:
                self._run(batch, overrides, first)
            finally:
                self._out.clear()

    def _run(self, batch: list[LaunchedPhase], overrides: list[list[str]], first: int) -> None:
        try:
            returns = list(self.launcher.launch(overrides, initial_job_idx=first))
        except BaseException as exc:  # noqa: BLE001 - the launcher itself failed: no phase of the batch ran
            problem = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            why = (f"the Hydra launcher {type(self.launcher).__name__} could not launch the job(s) of node(s) "
                   f"{', '.join(str(h.spec.node_id) for h in batch)}: {type(exc).__name__}"
                   + (f": {problem}" if problem else "") + "; no phase ran, and they are launched again when the "
                   "command is rerun with a launcher that works here")
            for handle in batch:
                self._record({"job": handle.job_num, "node": handle.spec.node_id, "event": "launch_failed",
                              "error": why})
                handle.launch_failed(why)
            return
        self.returns.append(returns)
        for i, handle in enumerate(batch):
            if i < len(returns):
                handle.finish(returns[i])
            else:
                handle.fail(f"the Hydra launcher returned {len(returns)} results for {len(batch)} jobs")
            self._record({"job": handle.job_num, "node": handle.spec.node_id, "event": "ended",
                          "status": handle.result().status, "output_dir": str(handle.job_dir or ""),
                          "launcher": self.launcher_name})

    def launchers_that_ran(self) -> set[str]:
        """The launchers whose jobs ran in this sweep (a job that ended; a launch that failed ran nothing)."""
        return {e["launcher"] for e in self._entries() if e.get("event") == "ended" and e.get("launcher")}

    def _entries(self) -> list[dict[str, Any]]:
        path = self.search_dir / JOBS_FILE
        out = []
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line torn by a kill
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    # -- job numbers ----------------------------------------------------------------------------
    def next_job_number(self) -> int:
        """One more than any job this sweep has launched, over every run of the command (jobs.jsonl)."""
        last = -1
        for entry in self._entries():
            try:
                last = max(last, int(entry["job"]))
            except (ValueError, KeyError, TypeError):
                continue
        return last + 1

    def _record(self, entry: dict[str, Any]) -> None:
        with open(self.search_dir / JOBS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({**entry, "at": time.time()}) + "\n")

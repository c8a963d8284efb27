"""Scoring checkpoints in a separate process: what the TRL and verl backends' evaluations share.

The backend names its evaluation entry point (`python -m <module> <eval_config.json>`) and what every request needs;
the process reads {<payload>, "requests": [...], "output": path, "workdir": scratch folder} and writes
{"results": [{"scores": {...}} or {"error": "..."}, ...]} to `output`, one entry per request, in order. A request that
fails gives None, with a warning carrying the error and the end of the process's output, so a finished search is not
lost to a failed final scoring. The process runs here (run_local) or, on cluster=ray, as a job on the cluster with
its files on the shared search directory (RayExecutor.evaluate), where the phases' GPUs are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..atomic import write_json_atomic
from .base import EvalRequest, Resources

SPLITS = ("val", "test")


def request_fields(req: EvalRequest) -> dict[str, Any]:
    """A request as the evaluation process reads it: the checkpoint as an absolute path (or None) and the split."""
    if req.split not in SPLITS:
        raise ValueError(f"split={req.split!r} is not allowed: expected 'val' or 'test'")
    return {"checkpoint": str(Path(req.checkpoint).resolve()) if req.checkpoint is not None else None,
            "split": req.split}


@dataclass
class EvalJob:
    """One evaluation process, its config already written into `workdir`: run here (run_local) or by an executor on
    the cluster (RayExecutor.evaluate), which then reads the same results file (collect)."""

    argv: list[str]
    workdir: Path
    output: Path
    wanted: list[dict[str, Any]]
    backend: str
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    resources: Resources = field(default_factory=Resources)

    def collect(self, log: str) -> list[dict[str, float] | None]:
        """Each request's scores, or None with a warning carrying its error and the end of `log`."""
        try:
            results = json.loads(self.output.read_text())["results"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            results = [{}] * len(self.wanted)
        out: list[dict[str, float] | None] = []
        for req, res in zip(self.wanted, results):
            if "scores" in res:
                out.append({k: float(v) for k, v in res["scores"].items()})
                continue
            tail = "\n".join(log.splitlines()[-30:])
            warnings.warn(f"{self.backend} evaluation of {req['checkpoint'] or 'the base model'} on {req['split']} "
                          f"failed: {res.get('error', 'no result written')}\n{tail}", RuntimeWarning, stacklevel=3)
            out.append(None)
        return out


def eval_job(module: str, payload: dict[str, Any], wanted: Sequence[dict[str, Any]], workdir: Path | str, *,
             backend: str, env: dict[str, str] | None = None, timeout: float | None = None,
             resources: Resources | None = None) -> EvalJob:
    """Write the evaluation config of `wanted` (request_fields() plus what the backend's process reads) into
    `workdir` and return the job that runs `python -m <module>` on it."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path, out_path = workdir / "eval_config.json", workdir / "result.json"
    out_path.unlink(missing_ok=True)
    write_json_atomic(cfg_path, {**payload, "requests": list(wanted), "output": str(out_path), "workdir": str(workdir)})
    return EvalJob([sys.executable, "-m", module, str(cfg_path)], workdir, out_path, list(wanted), backend,
                   dict(env or {}), timeout, resources or Resources())


def run_local(job: EvalJob) -> list[dict[str, float] | None]:
    """The job as a child process of this one."""
    try:
        proc = subprocess.run(job.argv, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, **job.env}, timeout=job.timeout)
        output = proc.stdout
    except subprocess.TimeoutExpired as exc:
        output = f"evaluation timed out after {exc.timeout}s"
    return job.collect(output)

"""Scoring checkpoints in a child process: what the TRL and verl backends' evaluate_batch share.

The backend names its evaluation entry point (`python -m <module> <eval_config.json>`) and what every request needs;
the process reads {<payload>, "requests": [...], "output": path, "workdir": scratch folder} and writes
{"results": [{"scores": {...}} or {"error": "..."}, ...]} to `output`, one entry per request, in order. A request that
fails gives None, with a warning carrying the error and the end of the process's output, so a finished search is not
lost to a failed final scoring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..atomic import write_json_atomic
from .base import EvalRequest

SPLITS = ("val", "test")


def request_fields(req: EvalRequest) -> dict[str, Any]:
    """A request as the evaluation process reads it: the checkpoint as an absolute path (or None) and the split."""
    if req.split not in SPLITS:
        raise ValueError(f"split={req.split!r} is not allowed: expected 'val' or 'test'")
    return {"checkpoint": str(Path(req.checkpoint).resolve()) if req.checkpoint is not None else None,
            "split": req.split}


def run_evaluations(module: str, payload: dict[str, Any], wanted: Sequence[dict[str, Any]], *, backend: str,
                    env: dict[str, str] | None = None, timeout: float | None = None) -> list[dict[str, float] | None]:
    """Every request of `wanted` (request_fields() plus what the backend's process reads) in one process."""
    if not wanted:
        return []
    with tempfile.TemporaryDirectory(prefix=f"llmzero-{backend.lower()}-eval-") as tmp:
        cfg_path, out_path = Path(tmp) / "eval_config.json", Path(tmp) / "result.json"
        write_json_atomic(cfg_path, {**payload, "requests": list(wanted), "output": str(out_path), "workdir": tmp})
        try:
            proc = subprocess.run([sys.executable, "-m", module, str(cfg_path)], check=False, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **(env or {})}, timeout=timeout)
            output = proc.stdout
        except subprocess.TimeoutExpired as exc:
            output = f"evaluation timed out after {exc.timeout}s"
        try:
            results = json.loads(out_path.read_text())["results"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            results = [{}] * len(wanted)
    out: list[dict[str, float] | None] = []
    for req, res in zip(wanted, results):
        if "scores" in res:
            out.append({k: float(v) for k, v in res["scores"].items()})
            continue
        tail = "\n".join(output.splitlines()[-30:])
        warnings.warn(f"{backend} evaluation of {req['checkpoint'] or 'the base model'} on {req['split']} failed: "
                      f"{res.get('error', 'no result written')}\n{tail}", RuntimeWarning, stacklevel=3)
        out.append(None)
    return out

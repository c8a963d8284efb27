"""The phase directory: the files through which a phase, wherever it runs, talks to the search.

    metrics.jsonl   one flushed line per step, canonical names (llmzero.metrics.names)
    log.txt         the phase's own log
    result.json     written last by a phase process: {"status", "error", "steps_done", ...}
    checkpoints/    step_<k>/ adapter checkpoints, complete once their COMPLETE marker exists
    STOP            asks the phase to stop gracefully at its next step (its text is the reason)
    phase_config.json  what a phase process runs: {"spec", "task", "model", "trainer"} (written by the search)

Every backend and the search's crash recovery use these names and rules, so a phase resumed on
another machine or by another backend reads the directory the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..metrics import names
from ..metrics.store import read_records
from ..atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"
LOG_FILE = "log.txt"
RESULT_FILE = "result.json"
STOP_FILE = "STOP"
PHASE_CONFIG = "phase_config.json"
CHECKPOINTS = "checkpoints"
COMPLETE_MARKER = "COMPLETE"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a checkpoint is a PEFT adapter folder, whichever backend wrote it
ADAPTER_CONFIG = "adapter_config.json"


def checkpoint_dir(phase_dir: Path | str, step: int) -> Path:
    return Path(phase_dir) / CHECKPOINTS / f"step_{step}"


def adapter_rank(ckpt: Path | str) -> int:
    """The LoRA rank a checkpoint's adapter was trained with; FileNotFoundError when it is not an adapter folder."""
    cfg_path = Path(ckpt) / ADAPTER_CONFIG
    try:
        return int(json.loads(cfg_path.read_text())["r"])
    except (OSError, KeyError, ValueError) as exc:
        raise FileNotFoundError(f"{ckpt} is not a LoRA adapter checkpoint: cannot read {ADAPTER_CONFIG} ({exc})") from None


def list_checkpoints(phase_dir: Path | str) -> list[int]:
    """Steps of the complete checkpoints, ascending (one interrupted mid-save has no marker and is left out)."""
    root = Path(phase_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    steps = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step_") and p.name[5:].isdigit() and (p / COMPLETE_MARKER).exists():
            steps.append(int(p.name[5:]))
    return sorted(steps)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_checkpoint_complete(path: Path | str) -> None:
    """Written last, so a checkpoint interrupted mid-save is never offered for resumption.

    Everything in the checkpoint reaches the disk before the marker does, so the files inside
    need no atomic writes of their own; the phase's metrics.jsonl is synced here too, as the
    search trims it back to this checkpoint when it resumes the phase.
    """
    path = Path(path)
    for f in path.iterdir():
        if f.is_file():
            _fsync(f)
    metrics = path.parent.parent / METRICS_FILE
    if metrics.exists():
        _fsync(metrics)
    _fsync(path)
    (path / COMPLETE_MARKER).write_text("ok\n")
    _fsync(path / COMPLETE_MARKER)
    _fsync(path)


def stop_request(phase_dir: Path | str) -> str | None:
    """What the phase directory's STOP file asks ('' when it cannot be read), or None when no stop is asked."""
    path = Path(phase_dir) / STOP_FILE
    if not path.exists():
        return None
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def prepare_for_start(phase_dir: Path | str, resume_own: bool) -> int | None:
    """Before a phase (re)starts: returns the phase's own last checkpoint to continue from, or None.

    Continuing, records past that checkpoint are dropped (those steps run again, and must not be
    counted twice); starting afresh, the old metrics go, and the old log too unless this is a
    relaunch. A stale STOP request never reaches the new attempt.
    """
    d = Path(phase_dir)
    d.mkdir(parents=True, exist_ok=True)
    own = list_checkpoints(d) if resume_own else []
    if own:
        keep_records_until(d / METRICS_FILE, own[-1])
    else:
        (d / METRICS_FILE).unlink(missing_ok=True)
        if not resume_own:
            (d / LOG_FILE).unlink(missing_ok=True)
    (d / STOP_FILE).unlink(missing_ok=True)
    return own[-1] if own else None


def keep_records_until(path: Path | str, last_step: int) -> None:
    """Keep the records up to `last_step`; the steps after it run again. Rewritten even when nothing is
    dropped, so a line torn by a kill is not left for the next attempt to append to."""
    if Path(path).exists():
        keep = [r for r in read_records(path) if int(r.get(names.STEP, 0)) <= last_step]
        write_text_atomic(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep))


def log_tail(path: Path | str, lines: int = 60) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

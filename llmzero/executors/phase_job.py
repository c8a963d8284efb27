"""One phase as one Hydra job: what a job of the llmzero sweeper runs (`phase_spec=<spec.yaml>` on its command line).

The job runs on whatever machine the launcher chose (this process with the basic launcher, a SLURM node with
submitit, a Ray worker), so it builds the trainer from its own composed config, runs the phase there through the
backend's start(), and leaves the outcome in the phase directory (metrics, checkpoints, and phase_result.json, which
the sweeper reads): that directory is the node's own, whereas the job's output folder is the launcher's to name and
two jobs may share it (`hydra.sweep.subdir=trial`). A copy of phase_result.json goes in the job's output folder for
anyone browsing the sweep. The job's return value is the phase's best validation score, so any Hydra tool reading
return values sees the number it expects; a failed phase raises PhaseFailed, so Hydra marks the job FAILED.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import yaml
from omegaconf import DictConfig

from ..atomic import write_json_atomic
from ..tasks.auto_reward import settled_config
from ..trainers.base import PhaseSpec, TrainerBackend
from ..trainers.factory import trainer_from_config
from ..tree import PhaseResult, PhaseStatus

JOB_RESULT = "phase_result.json"
POLL_S = 0.2


class PhaseFailed(RuntimeError):
    """The job's phase failed; the message is the phase's own error."""


def run_to_end(trainer: TrainerBackend, spec: PhaseSpec) -> PhaseResult:
    """Start the phase of `spec` on this machine and wait for its end (its files are the search's to tail)."""
    started = time.time()
    handle = trainer.start(spec)
    while not handle.done():
        handle.poll()
        time.sleep(POLL_S)
    handle.poll()
    result = handle.result()
    return result if result.wall_s else dataclasses.replace(result, wall_s=time.time() - started)


def run_phase_job(cfg: DictConfig, job_dir: Path) -> float | None:
    spec = PhaseSpec.from_dict(yaml.safe_load(Path(str(cfg.phase_spec)).read_text()))
    cfg = settled_config(cfg, spec.dir.parent.parent)  # <search.dir>/nodes/<id>: the search's own reward
    trainer = trainer_from_config(cfg)
    trainer.prepare(print)  # the builtin model is built once per cache; a job on a fresh machine builds its own
    result = run_to_end(trainer, spec)
    record = {**dataclasses.asdict(result), "node": spec.node_id}
    write_json_atomic(spec.dir / JOB_RESULT, record)
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(job_dir / JOB_RESULT, record)
    if result.status == PhaseStatus.FAILED:
        raise PhaseFailed(f"node {spec.node_id}: {result.error}")
    return result.best_val


def read_job_result(phase_dir: Path, node_id: int) -> PhaseResult | None:
    """The PhaseResult the job of node `node_id` left in that node's directory, or None when it never got that far
    (or the file is another node's)."""
    try:
        record = json.loads((phase_dir / JOB_RESULT).read_text())
        if record.pop("node", node_id) != node_id:
            return None
        return PhaseResult(**record)
    except (OSError, TypeError, ValueError, AttributeError):
        return None

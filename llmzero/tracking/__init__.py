"""Experiment tracking: W&B runs per phase (wandb_runs) and reading offline runs back (wandb_read).

wandb is imported only when tracking is on (mode "offline"/"online") or when an
offline run is read.
"""

from .wandb_read import (
    OfflineRun,
    find_offline_runs,
    read_offline_run,
    read_offline_runs,
)
from .wandb_runs import WandbSettings, WandbTracker, phase_run_id

__all__ = [
    "OfflineRun",
    "WandbSettings",
    "WandbTracker",
    "find_offline_runs",
    "phase_run_id",
    "read_offline_run",
    "read_offline_runs",
]

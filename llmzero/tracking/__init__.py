"""Experiment tracking: W&B runs per phase (wandb_runs) and the search's observer of them (observer).

wandb is imported only when tracking is on (mode "offline"/"online").
"""

from .wandb_runs import WandbSettings, WandbTracker, phase_run_id

__all__ = ["WandbSettings", "WandbTracker", "phase_run_id"]

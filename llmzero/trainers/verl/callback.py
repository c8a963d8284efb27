"""The hook verl calls after each durable checkpoint save (`trainer.checkpoint_callback_class`): our checkpoint, then STOP.

It runs on verl's driver (the TaskRunner actor), after the save's worker RPCs returned, so the shards it reads are
complete. There it
  1. exports the save as our `checkpoints/step_<k>/` (adapters.export_checkpoint: adapter only, COMPLETE last), before
     training goes on, so a crash a moment later still leaves the step resumable; and
  2. honours a STOP file in the phase directory: verl 0.9's trainer handles no signal, so a graceful stop ends the run
     right after a checkpoint, by lowering the trainer's total_training_steps to this step. verl's loop then finishes
     the step (its metrics and validation are logged) and returns normally.

The phase directory and the step this run started from come as `trainer.llmzero.{phase_dir,start_step}` (overrides.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from ...state import phase_dir as layout


def checkpoint_meta(phase_config: dict[str, Any], step: int, adapter: str | None) -> dict[str, Any]:
    """phase.json of a checkpoint: who wrote it, at which step, with which settings (as trainer=trl writes it)."""
    spec, model = phase_config.get("spec") or {}, phase_config.get("model") or {}
    return {"node_id": spec.get("node_id"), "step": step, "global_step": int(spec.get("global_offset") or 0) + step,
            "hparams": spec.get("hparams"), "base_model": model.get("path"), "init_checkpoint": adapter,
            "backend": "verl"}


class AdapterCheckpoints(CheckpointCallback):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config=config)
        ours = config.trainer.llmzero
        self.phase_dir = Path(str(ours.phase_dir))
        self.start_step = int(ours.start_step)
        self.adapter = config.actor_rollout_ref.model.get("lora_adapter_path")

    def on_save(self, trainer: Any, global_step: int, checkpoint_dir: str, async_save: bool = False,
                **kwargs: Any) -> None:
        from .adapters import export_checkpoint

        step = self.start_step + int(global_step)
        phase_config = json.loads((self.phase_dir / layout.PHASE_CONFIG).read_text())
        export_checkpoint(Path(checkpoint_dir) / "actor", layout.checkpoint_dir(self.phase_dir, step),
                          checkpoint_meta(phase_config, step, self.adapter))
        print(f"llmzero: saved adapter checkpoints/step_{step}", flush=True)
        reason = layout.stop_request(self.phase_dir)
        if reason is not None:
            print(f"llmzero: stop requested ({reason or 'STOP'}): ending after step {step}", flush=True)
            trainer.total_training_steps = int(global_step)


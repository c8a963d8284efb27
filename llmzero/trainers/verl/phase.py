"""One GRPO phase with verl, run as its own process: `python -m llmzero.trainers.verl.phase <phase_config.json>`.

phase_config.json (VerlTrainer.phase_command) holds {"spec", "task", "model", "trainer"}; "trainer" carries the
cluster's topology too. Like trainer=trl's phase (trainers/trl/phase.py), the process speaks to the search only
through the phase directory:

    verl/data/*.parquet, verl/reward_fn.py   the task for verl (data.py), written here, on the node that trains
    verl/checkpoints/                        verl's own saves, pruned to the last one by verl
    verl/<run>.metrics.jsonl                 verl's file logger, one per run (verl truncates the file it opens)
    metrics.jsonl                            our canonical records, one per step (metrics_map.py)
    checkpoints/step_<k>/                    adapter only, COMPLETE last (written by callback.py inside verl)
    result.json                              written last, here

Steps. verl counts from 1 in every run; a relaunch after a crash (spec.resume_own) starts a new verl run from this
phase's own last checkpoint, so step = that checkpoint's step + verl's step, and the optimizer is fresh, as in
trainer=trl. verl validates every trainer.eval_every steps and saves every save_every steps and at the last step.

Stop. SubprocessPhase.stop writes STOP and sends SIGTERM. verl 0.9 handles no signal, so SIGTERM is ignored here and
the STOP file is read by the checkpoint callback at verl's next save, which ends the run after that step (status
early_stopped). A kill (the search interrupted) ends verl with this process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ...metrics.store import append_record
from ...state.phase_dir import METRICS_FILE, adapter_rank, list_checkpoints, stop_request
from ...tasks.base import summarise
from ...tree import PhaseStatus
from ..base import PhaseSpec
from ..child_main import phase_main
from .launch import model_inputs, options_from, run_driver, task_files
from .metrics_map import canonical, diverged
from .overrides import RunFiles, phase_overrides

log = logging.getLogger("llmzero.phase")


class VerlPhase:
    def __init__(self, config: dict[str, Any]) -> None:
        self.spec = PhaseSpec.from_dict(config["spec"])
        self.task_cfg = dict(config.get("task") or {})
        self.model_cfg = dict(config.get("model") or {})
        self.opts, self.topology = options_from(dict(config.get("trainer") or {}))
        self.dir = Path(self.spec.output_dir)
        self.hp = dict(self.spec.hparams)
        if int(self.spec.max_steps) < 1:
            raise ValueError(f"max_steps={self.spec.max_steps} is not allowed: a phase needs at least 1 optimizer step")
        self.total = int(self.spec.max_steps)
        self.start_step, self.adapter = self.spec.start_point()
        self.steps_done = self.start_step
        self.failure: str | None = None

    def overrides(self) -> tuple[list[str], RunFiles, Any]:
        """Write the task's files and return verl's overrides for this run (checked against verl by run_driver)."""
        if self.adapter and adapter_rank(self.adapter) != int(self.hp["lora_rank"]):
            raise ValueError(f"lora_rank={self.hp['lora_rank']} does not match the adapter {self.adapter} "
                             f"(r={adapter_rank(self.adapter)}); lora_rank is fixed along a strategy path")
        folder = self.dir / "verl"
        phase_config = str(self.dir / "phase_config.json")
        data = task_files(self.task_cfg, folder, phase_config,
                          ("train", "val", "test") if self.opts.eval_test else ("train", "val"))
        if getattr(data.task, "note", ""):
            log.info("%s", data.task.note)
        prompts = [ex for split in data.splits.values() for ex in split]
        path, templated, prompt_len = model_inputs(self.model_cfg, data.task, prompts, self.opts.max_prompt_length)
        run = RunFiles(
            model_path=path, train_files=data.files["train"],
            val_files=[data.files[k] for k in ("val", "test") if k in data.files],
            reward_module=data.reward_module, phase_config=phase_config, search=data.search,
            checkpoint_dir=str(folder / "checkpoints"), phase_dir=str(self.dir), max_prompt_length=prompt_len,
            adapter=self.adapter, start_step=self.start_step, chat_template=templated,
            enable_thinking=self.model_cfg.get("enable_thinking") if templated else None, seed=int(self.spec.seed),
            experiment=f"node{self.spec.node_id}-from{self.start_step}-{time.strftime('%Y%m%d-%H%M%S')}")
        ov = phase_overrides(self.hp, self.total - self.start_step, self.opts, self.topology, run,
                             self.spec.eval_every, self.spec.save_every)
        log.info("base model %s (%s), prompts up to %d tokens, %s", path,
                 "chat template" if templated else "plain text", prompt_len,
                 f"adapter from {self.adapter}" if self.adapter else "fresh adapter")
        return ov, run, data

    def run(self) -> str:
        if self.start_step >= self.total:
            log.info("nothing to do: checkpoint step_%d already reaches %d steps", self.start_step, self.total)
            return PhaseStatus.COMPLETED
        if stop_request(self.dir) is not None:
            log.info("stop requested before training started")
            return PhaseStatus.EARLY_STOPPED
        ov, run, data = self.overrides()
        metrics = self.dir / METRICS_FILE

        def on_record(line: dict[str, Any]) -> None:
            rec = canonical(line, start_step=self.start_step, global_offset=int(self.spec.global_offset),
                            summarise=lambda s, c: summarise(data.task, s, c), counts=data.counts,
                            figures=getattr(data.task, "figures", None))
            if rec is None:
                return
            append_record(metrics, rec)
            self.steps_done = max(self.steps_done, int(rec["step"]))
            bad = diverged(rec)
            if bad and self.failure is None:
                self.failure = (f"{', '.join(f'{k}={rec[k]}' for k in bad)} at step {rec['step']}: training diverged "
                                f"(learning_rate={self.hp['learning_rate']:g}, grad_clip={self.hp['grad_clip']:g})")
            log.info("step %d/%d %s", rec["step"], self.total, " ".join(
                f"{k}={v:.4g}" for k, v in rec.items() if k not in ("step", "global_step") and isinstance(v, float)
                and math.isfinite(v)))

        rc = run_driver(self.opts.driver, ov, run, on_record, should_kill=lambda: self.failure)
        if self.failure:
            raise FloatingPointError(self.failure)
        if rc != 0:
            raise RuntimeError(f"verl ({self.opts.driver}) exited with status {rc} after step {self.steps_done}; its "
                               "output is above in this log")
        saved = list_checkpoints(self.dir)
        self.steps_done = max(self.steps_done, saved[-1] if saved else 0)
        if self.steps_done >= self.total:
            log.info("completed %d steps", self.steps_done)
            return PhaseStatus.COMPLETED
        if stop_request(self.dir) is not None:
            log.info("stopped after step %d: %s", self.steps_done, stop_request(self.dir) or "STOP")
            return PhaseStatus.EARLY_STOPPED
        raise RuntimeError(f"verl ended after step {self.steps_done} of {self.total} without a stop request")


def main(argv: list[str] | None = None) -> int:
    def start(config: dict[str, Any], spec: PhaseSpec) -> VerlPhase:
        # the STOP file, which SubprocessPhase writes before signalling, is honoured at verl's next save (callback.py)
        signal.signal(signal.SIGTERM, lambda *_: log.info("SIGTERM: stopping at verl's next checkpoint save"))
        return VerlPhase(config)

    return phase_main(argv, "llmzero.trainers.verl.phase", start)


if __name__ == "__main__":
    sys.exit(main())

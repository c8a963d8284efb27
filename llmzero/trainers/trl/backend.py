"""TRLTrainer: real single-machine GRPO with LoRA through TRL's GRPOTrainer (`trainer=trl`).

Each phase runs as `python -m llmzero.trainers.trl.phase <phase_dir>/phase_config.json` under a SubprocessPhase, so an
OOM, a NaN or a crash fails the node and not the search; evaluation of checkpoints (the best node's test score, the
base model's reference scores) runs as `python -m llmzero.trainers.trl.evaluate` in a subprocess too.

Hyperparameter mapping and batch semantics: config_map.py. Model, reference and checkpoint handling: phase.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ...config.schema import TRLTrainerConfig, plain
from ...hparams.space import HParamSpace, HParamSpec
from ...models.resolve import model_unavailable
from ..base import EvalRequest, Resources, require_hparams
from ..subprocess_trainer import SubprocessTrainer
from .config_map import MANAGED_FIELDS, problems


def options_from(raw: dict[str, Any]) -> tuple[TRLTrainerConfig, list[str]]:
    """The trainer options and pass-through hyperparameter names a phase or evaluation process was given."""
    known = {f.name for f in dataclasses.fields(TRLTrainerConfig)}
    return TRLTrainerConfig(**{k: v for k, v in raw.items() if k in known}), list(raw.get("passthrough") or [])


def _grpo_fields() -> set[str] | None:
    try:
        from trl import GRPOConfig
    except Exception:  # noqa: BLE001 - checked again, loudly, in the phase
        return None
    return {f.name for f in dataclasses.fields(GRPOConfig)}


class TRLTrainer(SubprocessTrainer):
    """Trainer backend (llmzero.trainers.base) running GRPO + LoRA phases with TRL in subprocesses."""

    phase_module, eval_module, label = "llmzero.trainers.trl.phase", "llmzero.trainers.trl.evaluate", "TRL"

    def __init__(self, *, task: dict | None = None, model: dict | None = None, **options: Any) -> None:
        # Options and their defaults are the schema's (trainer=trl in conf/), written once there; the phase and
        # evaluation processes rebuild the same dataclass from options().
        self.opts = opts = TRLTrainerConfig(**plain(options))
        self.name = opts.name
        super().__init__(task, model)
        self._extra = dict(plain(opts.extra_hparams) or {})
        clash = sorted(set(self._extra) & MANAGED_FIELDS)
        if clash:
            raise ValueError(f"trainer.extra_hparams {clash} name GRPOConfig fields the backend sets from the "
                             "canonical hyperparameters; use the canonical names instead")
        fields = _grpo_fields() if self._extra else set()
        unknown = sorted(set(self._extra) - fields) if fields is not None else []
        if unknown:
            raise ValueError(f"trainer.extra_hparams {unknown} are not GRPOConfig fields of the installed TRL; "
                             "pass-through hyperparameters must be named after GRPOConfig fields")

    # -- backend interface ---------------------------------------------------------------------
    def extra_hparams(self) -> dict[str, HParamSpec]:
        return dict(HParamSpace.from_config(self._extra).specs)

    def options(self) -> dict[str, Any]:
        """What the phase and evaluate processes need from the trainer config (options_from() reads it back)."""
        return {**dataclasses.asdict(self.opts), "passthrough": sorted(self._extra)}

    def check(self, hparams: dict[str, Any]) -> list[str]:
        return problems(hparams, micro_batch_size=self.opts.micro_batch_size,
                        train_size=self.train_size())

    def host_problems(self) -> list[str]:
        """cluster=local loads the model here, in every phase and the final scoring."""
        problem = model_unavailable(self.model)
        return [problem] if problem else []

    def env(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.opts.torch_threads > 0:
            env["OMP_NUM_THREADS"] = str(self.opts.torch_threads)
        return env

    def resources(self) -> Resources:
        return Resources(cpus=float(self.opts.torch_threads or 1))

    def eval_timeout(self) -> float | None:
        return self.opts.eval_timeout_s

    def eval_request(self, fields: dict[str, Any], request: EvalRequest) -> dict[str, Any]:
        return {**fields, "max_new_tokens": self.max_new_tokens(fields["checkpoint"], request.hparams)}

    def max_new_tokens(self, checkpoint: str | Path | None, hparams: dict[str, Any]) -> int:
        """Greedy length: trainer.eval_max_new_tokens, else the one the phase scored this checkpoint's val with (its
        phase.json, so scores agree), else model.eval_max_new_tokens, else the response_length of `hparams` (θ0 for
        the base model)."""
        if self.opts.eval_max_new_tokens:
            return int(self.opts.eval_max_new_tokens)
        if checkpoint is None and self.model.get("eval_max_new_tokens"):
            return int(self.model["eval_max_new_tokens"])
        if checkpoint is not None:
            try:
                meta = json.loads((Path(checkpoint) / "phase.json").read_text())
                return int(meta.get("eval_max_new_tokens") or meta["hparams"]["response_length"])
            except (OSError, KeyError, ValueError, TypeError):
                pass
        return int(require_hparams(hparams, ["response_length"], self.name)["response_length"])

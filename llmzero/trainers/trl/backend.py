"""TRLTrainer: real single-machine GRPO with LoRA through TRL's GRPOTrainer (`trainer=trl`).

Each phase runs as `python -m llmzero.trainers.trl.phase <phase_dir>/phase_config.json` under a SubprocessPhase, so an
OOM, a NaN or a crash fails the node and not the search; evaluation of checkpoints (the best node's test score, the
base model's reference scores) runs as `python -m llmzero.trainers.trl.evaluate` in a subprocess too.

Hyperparameter mapping and batch semantics: config_map.py. Model, reference and checkpoint handling: phase.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ...hparams.space import HParamSpace, HParamSpec
from ...metrics import names as N
from ...metrics.store import read_records
from ...state.atomic import write_json_atomic, write_text_atomic
from ..base import PhaseSpec, list_checkpoints
from ..subprocess_phase import SubprocessPhase
from .config_map import (
    DEFAULT_LOSS_TYPE,
    LOSS_TYPES,
    MANAGED_FIELDS,
    problems,
    resolve_hparams,
)

PHASE_CONFIG = "phase_config.json"


def _plain(x: Any) -> Any:
    try:
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover
        return x
    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


def _grpo_fields() -> set[str] | None:
    try:
        from trl import GRPOConfig
    except Exception:  # noqa: BLE001 - checked again, loudly, in the phase
        return None
    return {f.name for f in dataclasses.fields(GRPOConfig)}


class TRLTrainer:
    """Trainer backend (llmzero.trainers.base) running GRPO + LoRA phases with TRL in subprocesses."""

    def __init__(self, name: str = "trl", eval_every: int = 5, save_every: int = 5,
                 extra_hparams: dict | None = None, loss_type: str = DEFAULT_LOSS_TYPE, micro_batch_size: int = 0,
                 torch_threads: int = 1, log_every: int = 1, eval_max_new_tokens: int | None = None,
                 eval_batch_size: int = 256, eval_test: bool = False, gradient_checkpointing: bool = False,
                 device: str = "auto", dtype: str = "auto", eval_timeout_s: float | None = None,
                 task: dict | None = None, model: dict | None = None, **_: Any) -> None:
        self.name = name
        self.eval_every, self.save_every = max(1, int(eval_every)), max(1, int(save_every))
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"trainer.loss_type={loss_type!r} is not supported; allowed: {list(LOSS_TYPES)}")
        if int(micro_batch_size) < 0:
            raise ValueError(f"trainer.micro_batch_size={micro_batch_size} is not allowed: expected 0 (the whole "
                             "step in one pass) or a positive number of completions")
        self.loss_type = loss_type
        self.micro_batch_size = int(micro_batch_size)
        self.torch_threads = int(torch_threads)
        self.log_every = max(1, int(log_every))
        self.eval_max_new_tokens = int(eval_max_new_tokens) if eval_max_new_tokens else None
        self.eval_batch_size = max(1, int(eval_batch_size))
        self.eval_test = bool(eval_test)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.device, self.dtype = str(device), str(dtype)
        self.eval_timeout_s = eval_timeout_s
        self.task = dict(_plain(task) or {})
        self.model = dict(_plain(model) or {})
        self._extra = dict(_plain(extra_hparams) or {})
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
        """What the phase and evaluate processes need from the trainer config."""
        return {
            "name": self.name, "loss_type": self.loss_type, "micro_batch_size": self.micro_batch_size,
            "torch_threads": self.torch_threads, "log_every": self.log_every,
            "eval_max_new_tokens": self.eval_max_new_tokens, "eval_batch_size": self.eval_batch_size,
            "eval_test": self.eval_test, "gradient_checkpointing": self.gradient_checkpointing,
            "device": self.device, "dtype": self.dtype, "passthrough": sorted(self._extra),
        }

    def train_size(self) -> int:
        return int(self.task.get("train_size", 1000))

    def check(self, hparams: dict[str, Any]) -> list[str]:
        return problems(hparams, micro_batch_size=self.micro_batch_size, loss_type=self.loss_type,
                        train_size=self.train_size())

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        batch = max(1, int(resolve_hparams(hparams)["batch_size"]))
        return max(1, math.ceil(self.train_size() / batch))

    def _env(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.torch_threads > 0:
            env["OMP_NUM_THREADS"] = str(self.torch_threads)
        return env

    def start(self, spec: PhaseSpec) -> SubprocessPhase:
        prepare_files(spec)
        path = spec.dir / PHASE_CONFIG
        write_json_atomic(path, {"spec": spec.to_dict(), "task": self.task, "model": self.model,
                                 "trainer": self.options()})
        argv = [sys.executable, "-m", "llmzero.trainers.trl.phase", str(path)]
        return SubprocessPhase(argv, spec.dir, env=self._env())

    def base_max_new_tokens(self) -> int:
        """Greedy length for the base model: eval_max_new_tokens, else the task's, else the model's response_length."""
        if self.eval_max_new_tokens:
            return self.eval_max_new_tokens
        for cfg in (self.task, self.model):
            rl = (cfg.get("hparams") or {}).get("response_length")
            if rl:
                return int(rl)
        return int(resolve_hparams({})["response_length"])

    def checkpoint_max_new_tokens(self, checkpoint: str | Path) -> int:
        """The greedy length the phase used for this checkpoint's val score (its phase.json), so scores agree."""
        if self.eval_max_new_tokens:
            return self.eval_max_new_tokens
        try:
            meta = json.loads((Path(checkpoint) / "phase.json").read_text())
            return int(meta.get("eval_max_new_tokens") or meta["hparams"]["response_length"])
        except (OSError, KeyError, ValueError, TypeError):
            return self.base_max_new_tokens()

    def evaluate(self, checkpoint_dir: str | Path | None, split: str = "val") -> dict[str, float] | None:
        """Greedy task.score of a checkpoint (None = the base model) on "val" or "test", in a subprocess.

        Returns None (with a warning carrying the log) when the evaluation process fails, so a finished search is
        not lost to a failed final scoring.
        """
        if split not in ("val", "test"):
            raise ValueError(f"split={split!r} is not allowed: expected 'val' or 'test'")
        ckpt = str(Path(checkpoint_dir).resolve()) if checkpoint_dir is not None else None
        max_new = self.checkpoint_max_new_tokens(ckpt) if ckpt else self.base_max_new_tokens()
        with tempfile.TemporaryDirectory(prefix="llmzero-trl-eval-") as tmp:
            cfg_path, out_path = Path(tmp) / "eval_config.json", Path(tmp) / "result.json"
            write_json_atomic(cfg_path, {"task": self.task, "model": self.model, "trainer": self.options(),
                                         "checkpoint": ckpt, "split": split, "max_new_tokens": max_new,
                                         "output": str(out_path)})
            argv = [sys.executable, "-m", "llmzero.trainers.trl.evaluate", str(cfg_path)]
            try:
                proc = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env={**os.environ, **self._env()}, timeout=self.eval_timeout_s)
                output = proc.stdout
            except subprocess.TimeoutExpired as exc:
                output = f"evaluation timed out after {exc.timeout}s"
            try:
                result = json.loads(out_path.read_text())
            except (OSError, json.JSONDecodeError):
                result = {}
        if "scores" in result:
            return {k: float(v) for k, v in result["scores"].items()}
        tail = "\n".join(output.splitlines()[-30:])
        warnings.warn(f"TRL evaluation of {ckpt or 'the base model'} on {split} failed: "
                      f"{result.get('error', 'no result written')}\n{tail}", RuntimeWarning, stacklevel=2)
        return None


def prepare_files(spec: PhaseSpec) -> None:
    """Before the phase process starts: a fresh phase drops a stale metrics file and log; a resumed one keeps records
    up to its last complete checkpoint (the search has already truncated them; this only guards)."""
    d = spec.dir
    d.mkdir(parents=True, exist_ok=True)
    metrics = d / "metrics.jsonl"
    own = list_checkpoints(d) if spec.resume_own else []
    if own:
        records = read_records(metrics)
        if any(int(r.get(N.STEP, 0)) > own[-1] for r in records):
            kept = [r for r in records if int(r.get(N.STEP, 0)) <= own[-1]]
            write_text_atomic(metrics, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))
    else:
        metrics.unlink(missing_ok=True)
        if not spec.resume_own:
            (d / "log.txt").unlink(missing_ok=True)
    (d / "STOP").unlink(missing_ok=True)

"""TRLTrainer: real single-machine GRPO with LoRA through TRL's GRPOTrainer (`trainer=trl`).

Each phase runs as `python -m llmzero.trainers.trl.phase <phase_dir>/phase_config.json` under a SubprocessPhase, so an
OOM, a NaN or a crash fails the node and not the search; evaluation of checkpoints (the best node's test score, the
base model's reference scores) runs as `python -m llmzero.trainers.trl.evaluate` in a subprocess too.

Hyperparameter mapping and batch semantics: config_map.py. Model, reference and checkpoint handling: phase.py.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import OmegaConf

from ...config.schema import TRLTrainerConfig
from ...hparams.space import HParamSpace, HParamSpec
from ...hparams.steps import steps_per_epoch
from ...models.resolve import model_path_problem, model_unavailable
from ..base import EvalRequest, PhaseCommand, PhaseSpec, Resources, TrainerBase, require_hparams
from ..eval_process import EvalJob, eval_job, request_fields, run_local
from ..subprocess_phase import write_phase_config
from .config_map import MANAGED_FIELDS, problems


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


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


class TRLTrainer(TrainerBase):
    """Trainer backend (llmzero.trainers.base) running GRPO + LoRA phases with TRL in subprocesses."""

    can_evaluate = True

    def __init__(self, *, task: dict | None = None, model: dict | None = None, **options: Any) -> None:
        # Options and their defaults are the schema's (trainer=trl in conf/), written once there; the phase and
        # evaluation processes rebuild the same dataclass from options().
        self.opts = opts = TRLTrainerConfig(**_plain(options))
        self.name = opts.name
        self.task = dict(_plain(task) or {})
        self.model = dict(_plain(model) or {})
        problem = model_path_problem(self.model)
        if problem:
            raise ValueError(problem)
        self._extra = dict(_plain(opts.extra_hparams) or {})
        self._task: Any = None  # built on first use (_built_task)
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

    def train_size(self) -> int:
        """Prompts in the train split: task.train_size, or fewer when the dataset holds fewer (a benchmark is cut in
        the paper's proportions then), counted once from the split itself so steps per epoch are the real ones."""
        return min(int(self.task["train_size"]), len(self._built_task().splits()["train"]))

    def _built_task(self) -> Any:
        """The task, built (and its rows read) once in this process for train_size and prepare."""
        if self._task is None:
            from ...tasks.base import build_task

            self._task = build_task(self.task)
        return self._task

    def check(self, hparams: dict[str, Any]) -> list[str]:
        return problems(hparams, micro_batch_size=self.opts.micro_batch_size,
                        train_size=self.train_size())

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        return steps_per_epoch(self.train_size(), require_hparams(hparams, ["batch_size"], self.name)["batch_size"])

    def prepare(self, say: Callable[[str], None]) -> None:
        """Build the builtin model now, in the search process where its progress shows, rather than inside the
        first phase (where it would only reach log.txt); later phases and searches find it cached."""
        from ...models.resolve import BUILTIN_PREFIX, builtin_is_cached, resolve_model_path

        if not str(self.model.get("path", "")).startswith(BUILTIN_PREFIX):
            return
        task = self._built_task()
        if builtin_is_cached(self.model, task):
            return
        say(f"building the {self.model['path']} model for task {self.task.get('name', '?')} (first run only; "
            f"it is cached for later searches)")
        t0 = time.monotonic()
        path = resolve_model_path(self.model, task)
        say(f"built {path} in {time.monotonic() - t0:.0f} s")

    def host_problems(self) -> list[str]:
        """cluster=local loads the model here, in every phase and the final scoring."""
        problem = model_unavailable(self.model)
        return [problem] if problem else []

    def _env(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.opts.torch_threads > 0:
            env["OMP_NUM_THREADS"] = str(self.opts.torch_threads)
        return env

    def phase_command(self, spec: PhaseSpec) -> PhaseCommand:
        path = write_phase_config(spec, self.task, self.model, self.options())
        argv = [sys.executable, "-m", "llmzero.trainers.trl.phase", str(path)]
        return PhaseCommand(argv, str(spec.dir), env=self._env(),
                            resources=Resources(cpus=float(self.opts.torch_threads or 1)))

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

    def evaluate(self, checkpoint_dir: str | Path | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None:
        """Greedy task.score of a checkpoint (None = the base model) on "val" or "test", in a subprocess."""
        return self.evaluate_batch([EvalRequest(checkpoint_dir, split, hparams)])[0]

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]:
        """Every request in one evaluation process, which loads the base model once.

        A request that fails gives None (with a warning carrying the log), so a finished search is not lost to a
        failed final scoring.
        """
        with tempfile.TemporaryDirectory(prefix="llmzero-trl-eval-") as tmp:
            return run_local(self.eval_job(requests, tmp)) if requests else []

    def eval_job(self, requests: Sequence[EvalRequest], workdir: str | Path) -> EvalJob:
        """The evaluation process of `requests`, its files in `workdir` (an executor may run it on the cluster)."""
        wanted = []
        for req in requests:
            fields = request_fields(req)
            wanted.append({**fields, "max_new_tokens": self.max_new_tokens(fields["checkpoint"], req.hparams)})
        return eval_job("llmzero.trainers.trl.evaluate",
                        {"task": self.task, "model": self.model, "trainer": self.options()}, wanted, workdir,
                        backend="TRL", env=self._env(), timeout=self.opts.eval_timeout_s,
                        resources=Resources(cpus=float(self.opts.torch_threads or 1)))

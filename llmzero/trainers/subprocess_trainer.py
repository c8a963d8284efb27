"""What the TRL and verl backends share: each phase and each evaluation is a child process of its own
(`python -m <phase_module> <phase_config.json>`, `python -m <eval_module> <eval_config.json>`, child_main.py), built
from the task and model sections, so an OOM, a NaN or a crash fails the node and not the search. A backend says
which modules, with what environment and resources, and what one evaluation request carries."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config.schema import plain
from ..hparams.steps import steps_per_epoch
from ..models.resolve import model_path_problem
from .base import EvalRequest, PhaseCommand, PhaseSpec, Resources, TrainerBase, require_hparams
from .eval_process import EvalJob, eval_job, request_fields, run_local
from .subprocess_phase import write_phase_config


class SubprocessTrainer(TrainerBase):
    can_evaluate = True
    phase_module = ""  # e.g. llmzero.trainers.trl.phase
    eval_module = ""
    label = ""  # the backend's name in an evaluation's warnings

    def __init__(self, task: dict | None, model: dict | None) -> None:
        self.task = dict(plain(task) or {})
        self.model = dict(plain(model) or {})
        problem = model_path_problem(self.model)
        if problem:
            raise ValueError(problem)
        self._task: Any = None  # built on first use (_built_task)

    # -- what a backend says ---------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """What the phase and evaluation processes read back of the trainer config."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1"}

    def resources(self) -> Resources:
        """What one phase (or one evaluation) asks of its executor."""
        return Resources()

    def eval_request(self, fields: dict[str, Any], request: EvalRequest) -> dict[str, Any]:
        """One request as the evaluation process reads it: `fields` (the checkpoint and split) and what else it needs."""
        return fields

    def eval_timeout(self) -> float | None:
        return None

    # -- shared --------------------------------------------------------------------------------
    def _built_task(self) -> Any:
        """The task, built (and its rows read) once in this process for train_size and prepare."""
        if self._task is None:
            from ..tasks.base import build_task

            self._task = build_task(self.task)
        return self._task

    def train_size(self) -> int:
        """Prompts in the train split: task.train_size, or fewer when the dataset holds fewer (a benchmark is cut in
        the paper's proportions then), counted once from the split itself so steps per epoch are the real ones."""
        return min(int(self.task["train_size"]), len(self._built_task().splits()["train"]))

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        return steps_per_epoch(self.train_size(), require_hparams(hparams, ["batch_size"], self.name)["batch_size"])

    def prepare(self, say: Callable[[str], None]) -> None:
        """Build the builtin model now, in the search process where its progress shows, rather than inside the
        first phase (where it would only reach log.txt); later phases and searches find it cached."""
        from ..models.resolve import BUILTIN_PREFIX, builtin_is_cached, resolve_model_path

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

    def phase_command(self, spec: PhaseSpec) -> PhaseCommand:
        path = write_phase_config(spec, self.task, self.model, self.options())
        return PhaseCommand([sys.executable, "-m", self.phase_module, str(path)], str(spec.dir), env=self.env(),
                            resources=self.resources())

    def evaluate(self, checkpoint_dir: str | Path | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None:
        """Greedy task.score of a checkpoint (None = the base model) on "val" or "test", in a child process."""
        return self.evaluate_batch([EvalRequest(checkpoint_dir, split, hparams)])[0]

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]:
        """Every request in one evaluation process. A request that fails gives None (with a warning carrying the
        log), so a finished search is not lost to a failed final scoring."""
        with tempfile.TemporaryDirectory(prefix=f"llmzero-{self.name}-eval-") as tmp:
            return run_local(self.eval_job(requests, tmp)) if requests else []

    def eval_job(self, requests: Sequence[EvalRequest], workdir: str | Path) -> EvalJob:
        """The evaluation process of `requests`, its files in `workdir` (an executor may run it on the cluster)."""
        wanted = [self.eval_request(request_fields(req), req) for req in requests]
        return eval_job(self.eval_module, {"task": self.task, "model": self.model, "trainer": self.options()},
                        wanted, workdir, backend=self.label, env=self.env(), timeout=self.eval_timeout(),
                        resources=self.resources())

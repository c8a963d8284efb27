"""VerlTrainer: GRPO with LoRA through verl, one verl run per phase (`trainer=verl`), the paper's trainer.

Each phase runs as `python -m llmzero.trainers.verl.phase <phase_config.json>` (phase.py), which starts verl's own
driver; the executor decides where that process runs (cluster=local: here; cluster=ray: a Ray job whose verl driver
joins the same cluster). The phase asks its executor for no GPU itself: verl's workers claim the phase's
cluster.gpus_per_phase from Ray (Resources.placed_by_phase).

Before a phase is launched, check() composes its overrides against the installed verl's ppo_trainer.yaml and runs
verl's validation (compose.py), so a refused combination is reported in the search, naming what verl said, and the
agent's proposal is rejected like any other invalid one.

Mapping: overrides.py. Metrics: metrics_map.py. Checkpoints: adapters.py and callback.py. Evaluation: evaluate.py.
A task's search tool (PaperSearchQA): search_tool.py (a verl tool) and search_loop.py (the Search-R1 agent loop).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import OmegaConf

from ...config.schema import RetrieverConfig
from ...config.verl_trainer import VerlTrainerConfig
from ...hparams.steps import steps_per_epoch
from ...models.resolve import model_path_problem, model_unavailable
from ..base import EvalRequest, PhaseCommand, PhaseSpec, Resources, TrainerBase, require_hparams
from ..eval_process import EvalJob, eval_job, request_fields, run_local
from ..subprocess_phase import write_phase_config
from .compose import VerlConfigError, checked, verl_config_dir
from .overrides import RunFiles, SearchRun, Topology, phase_overrides, problems

ENGINE_PACKAGES = {"vllm": ("vllm", "vllm"), "sglang": ("sglang", "sglang"),
                   "trtllm": ("tensorrt_llm", "tensorrt-llm")}  # trainer.rollout_engine: (module, pip package)

# Placeholders for check(): the real paths exist only once a phase writes them, and verl checks no path here.
_CHECK_RUN = RunFiles(model_path="model", train_files="train.parquet", val_files=["val.parquet"],
                      reward_module="reward_fn.py", phase_config="phase_config.json", checkpoint_dir="checkpoints",
                      phase_dir="phase", max_prompt_length=1024)


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


class VerlTrainer(TrainerBase):
    """Trainer backend (llmzero.trainers.base) running each phase as one verl GRPO run."""

    can_evaluate = True

    def __init__(self, *, task: dict | None = None, model: dict | None = None, cluster: dict | None = None,
                 **options: Any) -> None:
        self.opts = VerlTrainerConfig(**_plain(options))
        self.name = self.opts.name
        self.task = dict(_plain(task) or {})
        self.model = dict(_plain(model) or {})
        self.cluster = dict(_plain(cluster) or {})
        problem = model_path_problem(self.model)
        if problem:
            raise ValueError(problem)
        if self.opts.extra_hparams:
            raise ValueError("trainer.extra_hparams is not supported by trainer=verl; pass verl settings as "
                             "trainer.overrides=[key=value,...] instead")
        self.topology = Topology.from_cluster(self.cluster)
        verl_config_dir()  # verl installed, or the message naming the extra to install
        self._check_run = _CHECK_RUN
        if self.task.get("search_tool"):  # the multi-turn keys a phase with the task's tool adds are checked too
            turns = (self.task.get("retriever") or {}).get("max_turns")
            self._check_run = dataclasses.replace(_CHECK_RUN, search=SearchRun(
                "search_tool.yaml", "agent_loops.yaml", int(RetrieverConfig.max_turns if turns is None else turns)))
        self._checked: dict[tuple[str, ...], str | None] = {}
        self._task: Any = None

    def options(self) -> dict[str, Any]:
        """What the phase and evaluate processes read back (launch.options_from): the options and the topology."""
        return {**dataclasses.asdict(self.opts), "cluster": self.cluster}

    def _built_task(self) -> Any:
        if self._task is None:
            from ...tasks.base import build_task

            self._task = build_task(self.task)
        return self._task

    def train_size(self) -> int:
        return min(int(self.task["train_size"]), len(self._built_task().splits()["train"]))

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        return steps_per_epoch(self.train_size(), require_hparams(hparams, ["batch_size"], self.name)["batch_size"])

    def check(self, hparams: dict[str, Any]) -> list[str]:
        """Our constraints, then verl's own on the composed overrides (each distinct override list checked once)."""
        out = problems(hparams, self.topology, self.opts)
        if not out and int(hparams["batch_size"]) > self.train_size():
            out.append(f"batch_size={hparams['batch_size']} is larger than the training split ({self.train_size()} "
                       f"prompts); allowed: batch_size ≤ {self.train_size()}")
        if out:
            return out
        overrides = tuple(phase_overrides(hparams, 1, self.opts, self.topology, self._check_run))
        if overrides not in self._checked:
            try:
                checked(overrides)
                self._checked[overrides] = None
            except VerlConfigError as exc:
                self._checked[overrides] = str(exc)
        found = self._checked[overrides]
        return [found] if found else []

    def prepare(self, say: Callable[[str], None]) -> None:
        from ...models.resolve import BUILTIN_PREFIX, builtin_is_cached, resolve_model_path

        if str(self.model.get("path", "")).startswith(BUILTIN_PREFIX) and not builtin_is_cached(self.model,
                                                                                                  self._built_task()):
            say(f"building the {self.model['path']} model for task {self.task.get('name', '?')} (first run only)")
            resolve_model_path(self.model, self._built_task())

    def inert_hparams(self) -> dict[str, str]:
        """With one mini-batch (trainer.mini_batches=1) and one PPO epoch per step, the policy that scores a batch is
        the one that sampled it: the importance ratio is 1 and PPO's clip never binds, so clip ratios do nothing."""
        if self.opts.mini_batches > 1:
            return {}
        why = ("trainer=verl updates once per step (trainer.mini_batches=1, one PPO epoch), so the importance ratio is "
               "1 and the clip never binds; set trainer.mini_batches>1 to make it a lever")
        return {"clip_ratio_low": why, "clip_ratio_high": why}

    def host_problems(self) -> list[str]:
        """cluster=local runs verl's workers here: the phase's GPUs must be visible and the rollout engine installed
        (without them verl's first phase dies in its worker startup, after the search has begun)."""
        import importlib.util

        import torch

        out = []
        need, seen = self.topology.gpus, torch.cuda.device_count() if torch.cuda.is_available() else 0
        if seen < need:
            out.append(f"trainer=verl with cluster=local runs each phase on this machine, which needs "
                       f"cluster.gpus_per_phase={need} GPU(s) here, but torch sees {seen}"
                       f"{' (no CUDA device)' if not seen else ''}: run the search on a GPU machine, use cluster=ray "
                       "with cluster.address of a GPU cluster, or trainer=trl on the CPU")
        engine = self.opts.rollout_engine
        module, package = ENGINE_PACKAGES[engine]
        if importlib.util.find_spec(module) is None:
            out.append(f"trainer.rollout_engine={engine} is not installed here (no module {module}): verl generates "
                       f"its rollouts with it; pip install {package} on every machine that runs phases (the "
                       "docs/backends.md names the versions)")
        problem = model_unavailable(self.model)
        return out + ([problem] if problem else [])

    def phase_command(self, spec: PhaseSpec) -> PhaseCommand:
        path = write_phase_config(spec, self.task, self.model, self.options())
        argv = [sys.executable, "-m", "llmzero.trainers.verl.phase", str(path)]
        return PhaseCommand(argv, str(spec.dir), env={"PYTHONUNBUFFERED": "1"},
                            resources=Resources(gpus=float(self.topology.gpus), cpus=1.0, placed_by_phase=True))

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, checkpoint_dir: str | Path | None, split: str, hparams: dict[str, Any]) -> dict[str, float] | None:
        return self.evaluate_batch([EvalRequest(checkpoint_dir, split, hparams)])[0]

    def eval_length(self, hparams: dict[str, Any]) -> int:
        """Greedy length of a final score (a test score, the base model's): model.eval_max_new_tokens (the paper
        scores at 8192, §4.1 and Appendix B.1), else the response_length of `hparams`. A phase's own validation
        curve stays at its response_length: verl's rollout server caps every generation, validation included, at
        rollout.response_length, so a longer val length would lengthen the training rollouts too."""
        configured = self.model.get("eval_max_new_tokens")
        return int(configured or require_hparams(hparams, ["response_length"], self.name)["response_length"])

    def evaluate_batch(self, requests: Sequence[EvalRequest]) -> list[dict[str, float] | None]:
        """Greedy scores from verl's validation-only runs (evaluate.py), one per request, in one process."""
        with tempfile.TemporaryDirectory(prefix="llmzero-verl-eval-") as tmp:
            return run_local(self.eval_job(requests, tmp)) if requests else []

    def eval_job(self, requests: Sequence[EvalRequest], workdir: str | Path) -> EvalJob:
        """The validation-only verl runs of `requests`, their files in `workdir`; on cluster=ray the executor runs
        the job on the cluster (its workers claim the phase's GPUs, as a phase's do)."""
        wanted = [{**request_fields(req), "hparams": dict(req.hparams), "max_new_tokens": self.eval_length(req.hparams)}
                  for req in requests]
        return eval_job("llmzero.trainers.verl.evaluate",
                        {"task": self.task, "model": self.model, "trainer": self.options()}, wanted, workdir,
                        backend="verl", env={"PYTHONUNBUFFERED": "1"}, timeout=self.opts.eval_timeout_s,
                        resources=Resources(gpus=float(self.topology.gpus), cpus=1.0, placed_by_phase=True))

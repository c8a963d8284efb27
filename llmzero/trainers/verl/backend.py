"""VerlTrainer: GRPO with LoRA through verl, one verl run per phase (`trainer=verl`), the paper's trainer.

Each phase runs as `python -m llmzero.trainers.verl.phase <phase_config.json>` (phase.py), which starts verl's own
driver; the executor decides where that process runs (cluster=local: here; cluster=ray: a Ray job whose verl driver
joins the same cluster). The phase asks its executor for no GPU itself: verl's workers claim the phase's
cluster.gpus_per_phase from Ray (Resources.placed_by_phase).

Before a phase is launched, check() composes its overrides against the installed verl's ppo_trainer.yaml and runs
verl's validation (compose.py), so a refused combination is reported in the search, naming what verl said, and the
agent's proposal is rejected like any other invalid one.

Mapping: overrides.py. Metrics: metrics_map.py. Checkpoints: adapters.py and callback.py. Evaluation: evaluate.py.
A task's search tool (PaperSearchQA): retrieval_tool.py (a verl tool) and retrieval_loop.py (the Search-R1 agent loop).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...config.schema import RetrieverConfig, plain
from ...config.verl_trainer import VerlTrainerConfig
from ...models.resolve import model_unavailable
from ..base import EvalRequest, Resources, require_hparams
from ..subprocess_trainer import SubprocessTrainer
from .compose import VerlConfigError, checked, verl_config_dir
from .overrides import RunFiles, SearchRun, Topology, phase_overrides, problems

ENGINE_PACKAGES = {"vllm": ("vllm", "vllm"), "sglang": ("sglang", "sglang"),
                   "trtllm": ("tensorrt_llm", "tensorrt-llm")}  # trainer.rollout_engine: (module, pip package)

# Placeholders for check(): the real paths exist only once a phase writes them, and verl checks no path here.
_CHECK_RUN = RunFiles(model_path="model", train_files="train.parquet", val_files=["val.parquet"],
                      reward_module="reward_fn.py", phase_config="phase_config.json", checkpoint_dir="checkpoints",
                      phase_dir="phase", max_prompt_length=1024)


class VerlTrainer(SubprocessTrainer):
    """Trainer backend (llmzero.trainers.base) running each phase as one verl GRPO run."""

    phase_module, eval_module, label = "llmzero.trainers.verl.phase", "llmzero.trainers.verl.evaluate", "verl"

    def __init__(self, *, task: dict | None = None, model: dict | None = None, cluster: dict | None = None,
                 **options: Any) -> None:
        self.opts = VerlTrainerConfig(**plain(options))
        self.name = self.opts.name
        super().__init__(task, model)
        self.cluster = dict(plain(cluster) or {})
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

    def options(self) -> dict[str, Any]:
        """What the phase and evaluate processes read back (launch.options_from): the options and the topology."""
        return {**dataclasses.asdict(self.opts), "cluster": self.cluster}

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

    def resources(self) -> Resources:
        """verl's workers claim the phase's GPUs from Ray themselves (placed_by_phase), as an evaluation's do."""
        return Resources(gpus=float(self.topology.gpus), cpus=1.0, placed_by_phase=True)

    def eval_timeout(self) -> float | None:
        return self.opts.eval_timeout_s

    def eval_request(self, fields: dict[str, Any], request: EvalRequest) -> dict[str, Any]:
        return {**fields, "hparams": dict(request.hparams), "max_new_tokens": self.eval_length(request.hparams)}

    def eval_length(self, hparams: dict[str, Any]) -> int:
        """Greedy length of a final score (a test score, the base model's): model.eval_max_new_tokens (the paper
        scores at 8192, §4.1 and Appendix B.1), else the response_length of `hparams`. A phase's own validation
        curve stays at its response_length: verl's rollout server caps every generation, validation included, at
        rollout.response_length, so a longer val length would lengthen the training rollouts too."""
        configured = self.model.get("eval_max_new_tokens")
        return int(configured or require_hparams(hparams, ["response_length"], self.name)["response_length"])

"""Settings of `trainer=verl`: GRPO + LoRA phases through verl (llmzero/trainers/verl). Every default is here, once.

Topology is not here: GPUs per phase, per node and per rollout engine are the cluster's (ClusterConfig), so the same
trainer preset runs on one 8-GPU node or on four 2-GPU nodes by changing `cluster=` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from .schema import TrainerConfig, _require

ATTN_IMPLEMENTATIONS = ("auto", "flash_attention_2", "sdpa", "eager")
ROLLOUT_ENGINES = ("vllm", "sglang", "trtllm")  # verl's rollout.name has no default and no other value
LOSS_AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_LOSS_TYPES = ("kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3", "full")


@dataclass
class VerlTrainerConfig(TrainerConfig):
    _target_: str = "llmzero.trainers.verl.backend.VerlTrainer"
    name: str = "verl"
    rollout_engine: str = "vllm"  # actor_rollout_ref.rollout.name
    gpu_memory_utilization: float = 0.6  # share of a GPU the rollout engine's KV cache may take
    micro_batch_size_per_gpu: int = 4  # sequences per forward/backward on one GPU (actor, rollout and ref log-probs)
    mini_batches: int = 1  # optimizer updates per step: ppo_mini_batch_size = batch_size / mini_batches (1 = on-policy)
    loss_agg_mode: str = "token-mean"  # verl's default, and what trainer=trl's dapo loss computes
    kl_loss_type: str = "low_var_kl"  # the k3 estimator verl's GRPO examples use
    max_prompt_length: Optional[int] = None  # tokens; null = the longest prompt of the task's splits, measured
    eval_test: bool = False  # also score the test split at each validation (test/score in metrics.jsonl)
    save_lora_only: bool = True  # verl checkpoints hold the adapter only (no base weights, no optimizer)
    driver: str = "verl.trainer.main_ppo"  # the module a phase runs; tests point it at a labelled fake
    overrides: List[str] = field(default_factory=list)  # further verl overrides (key=value), composed and checked too
    eval_timeout_s: Optional[float] = None  # limit for one evaluate() run
    # The actor's attention kernel (verl's model.override_config.attn_implementation, which verl defaults to
    # flash_attention_2 though nothing installs flash_attn): auto = flash_attention_2 where flash_attn imports on
    # the machine running the phase, else PyTorch's sdpa.
    attn_implementation: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.rollout_engine in ROLLOUT_ENGINES, "trainer.rollout_engine", self.rollout_engine,
                 f"one of {list(ROLLOUT_ENGINES)}")
        _require(0 < self.gpu_memory_utilization <= 1, "trainer.gpu_memory_utilization", self.gpu_memory_utilization,
                 "a float in (0, 1]")
        _require(self.micro_batch_size_per_gpu >= 1, "trainer.micro_batch_size_per_gpu", self.micro_batch_size_per_gpu,
                 "an int ≥ 1")
        _require(self.mini_batches >= 1, "trainer.mini_batches", self.mini_batches, "an int ≥ 1")
        _require(self.loss_agg_mode in LOSS_AGG_MODES, "trainer.loss_agg_mode", self.loss_agg_mode,
                 f"one of {list(LOSS_AGG_MODES)}")
        _require(self.kl_loss_type in KL_LOSS_TYPES, "trainer.kl_loss_type", self.kl_loss_type,
                 f"one of {list(KL_LOSS_TYPES)}")
        _require(self.max_prompt_length is None or self.max_prompt_length >= 1, "trainer.max_prompt_length",
                 self.max_prompt_length, "null (measured from the task) or an int ≥ 1 (tokens)")
        _require(bool(str(self.driver).strip()), "trainer.driver", self.driver, "a python module to run")
        for item in self.overrides:
            _require(isinstance(item, str) and "=" in item and not item.startswith("="), "trainer.overrides", item,
                     "verl overrides written key=value, e.g. actor_rollout_ref.rollout.enforce_eager=true")
        _require(self.attn_implementation in ATTN_IMPLEMENTATIONS, "trainer.attn_implementation",
                 self.attn_implementation, f"one of {list(ATTN_IMPLEMENTATIONS)}")
        _require(self.eval_timeout_s is None or self.eval_timeout_s > 0, "trainer.eval_timeout_s",
                 self.eval_timeout_s, "null (no limit) or a float > 0 (seconds)")

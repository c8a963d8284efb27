"""Canonical hyperparameters -> TRL 1.16 `GRPOConfig` keyword arguments (pure: no torch, no TRL import).

The mapping (canonical name -> GRPOConfig field):

    learning_rate     -> learning_rate          (constant schedule, no warmup: lr_scheduler_type="constant")
    kl_coef           -> beta                   (always passed; beta == 0 means TRL loads no reference and logs no kl)
    temperature       -> temperature
    rollouts          -> num_generations
    clip_ratio_low    -> epsilon
    clip_ratio_high   -> epsilon_high
    grad_clip         -> max_grad_norm
    entropy_coef      -> entropy_coef           (TRL >= 1.x has an entropy bonus: the mean per-token entropy)
    response_length   -> max_completion_length
    norm_adv_by_std   -> scale_rewards          (True -> "group", False -> "none")
    batch_size        -> per_device_train_batch_size / gradient_accumulation_steps / steps_per_generation (below)
    lora_rank         -> LoRA r (lora_alpha = 2r, all linear projections; see `lora_kwargs`)
    max_steps, epochs -> max_steps              (the phase length comes from the PhaseSpec, never from epochs here)

Hyperparameters arrive fully resolved from the search (conf/search/default.yaml holds the defaults); a missing key
is reported, never filled in here.

Batch semantics. Our `batch_size` counts PROMPTS per optimizer step; TRL's batch sizes count COMPLETIONS. In TRL
1.16 one optimizer step consumes `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size`
completions, and completions are generated `generation_batch_size = per_device_train_batch_size * steps_per_generation`
at a time. With

    completions per step  N = batch_size * rollouts
    per_device_train_batch_size = micro          (trainer.micro_batch_size, 0 or >= N -> N)
    gradient_accumulation_steps = N / micro
    steps_per_generation        = N / micro      (so generation_batch_size = N)
    num_iterations              = 1

every optimizer step generates exactly one batch of `batch_size` prompts x `rollouts` completions, takes one
gradient step on it (fully on-policy, as verl with ppo_mini_batch_size == train_batch_size), and TRL's group
normalisation sees whole groups because advantages are computed over the full generation batch before it is split
into micro-batches. N must be divisible by micro; nothing else is needed (N is a multiple of rollouts by
construction).

loss_type: "dapo" by default (TRL's default): token-level loss normalised by the number of active tokens in the
whole accumulated batch, i.e. verl's `loss_agg_mode=token-mean`; it has no length bias and is unaffected by how the
step is split into micro-batches. "grpo", "dr_grpo" and "bnpo" are also accepted; the other TRL loss types do not
log the PPO clip ratio the canonical metrics need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config.schema import TRLTrainerConfig
from ..base import missing_hparams, sampling_problems

# Option defaults are the schema's (conf/trainer/trl.yaml), referenced rather than repeated.
_LOSS_TYPE, _MICRO = TRLTrainerConfig.loss_type, TRLTrainerConfig.micro_batch_size

# The canonical hyperparameters this mapping reads.
USED = ("learning_rate", "kl_coef", "temperature", "clip_ratio_low", "clip_ratio_high", "grad_clip", "entropy_coef",
        "batch_size", "rollouts", "response_length", "norm_adv_by_std", "lora_rank")

# GRPOConfig fields this module sets itself; a pass-through hyperparameter may not override them.
MANAGED_FIELDS = frozenset({
    "learning_rate", "beta", "temperature", "num_generations", "epsilon", "epsilon_high", "max_grad_norm",
    "entropy_coef", "max_completion_length", "scale_rewards", "loss_type", "per_device_train_batch_size",
    "gradient_accumulation_steps", "steps_per_generation", "generation_batch_size", "num_iterations", "max_steps",
    "num_train_epochs", "lr_scheduler_type", "warmup_steps", "use_cpu", "bf16", "fp16", "report_to",
    "save_strategy", "eval_strategy", "logging_strategy", "logging_steps", "seed", "data_seed", "output_dir",
    "remove_unused_columns", "use_vllm", "gradient_checkpointing", "disable_tqdm",
})


def micro_batch(hp: Mapping[str, Any], micro_batch_size: int) -> int:
    """Completions per forward/backward pass: trainer.micro_batch_size, or the whole step when 0 or larger."""
    n = int(hp["batch_size"]) * int(hp["rollouts"])
    m = int(micro_batch_size or 0)
    return n if m <= 0 or m >= n else m


def problems(hparams: Mapping[str, Any], *, micro_batch_size: int = _MICRO,
             train_size: int | None = None) -> list[str]:
    """Constraints of the TRL backend; each message names the key, the value and what is allowed."""
    hp = hparams
    missing = missing_hparams(hp, USED)
    if missing:
        return [f"hyperparameters {missing} are not set: the TRL backend reads every one of {list(USED)}"]
    out: list[str] = []
    bs, g = hp["batch_size"], hp["rollouts"]
    if not isinstance(g, int) or isinstance(g, bool) or g < 2:
        out.append(f"rollouts={g!r} is not allowed: GRPO needs an integer >= 2 completions per prompt "
                   "(the group advantage is computed from their spread)")
    if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
        out.append(f"batch_size={bs!r} is not allowed: expected an integer >= 1 prompts per optimizer step")
    if out:
        return out
    n = bs * g
    m = int(micro_batch_size or 0)
    if m < 0:
        out.append(f"trainer.micro_batch_size={m} is not allowed: expected 0 (whole step at once) or a positive "
                   "number of completions")
    elif 0 < m < n and n % m:
        allowed = sorted({d for d in range(1, n + 1) if n % d == 0})
        out.append(f"batch_size={bs} × rollouts={g} = {n} completions per optimizer step is not divisible by "
                   f"trainer.micro_batch_size={m}; choose batch_size*rollouts a multiple of {m}, or a "
                   f"micro_batch_size dividing {n} (one of {allowed}), or micro_batch_size=0")
    if train_size is not None and bs > int(train_size):
        out.append(f"batch_size={bs} is larger than the training split ({train_size} prompts); TRL drops an "
                   f"incomplete last batch, so no step could run; allowed: batch_size <= {train_size}")
    rl = hp["response_length"]
    if not isinstance(rl, int) or isinstance(rl, bool) or rl < 1:
        out.append(f"response_length={rl!r} is not allowed: expected an integer >= 1 tokens")
    rank = hp["lora_rank"]
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        out.append(f"lora_rank={rank!r} is not allowed: expected an integer >= 1")
    out += sampling_problems(hp)
    return out


def grpo_kwargs(hparams: Mapping[str, Any], *, max_steps: int, output_dir: str, seed: int = 0,
                use_cpu: bool = True, loss_type: str = _LOSS_TYPE, micro_batch_size: int = _MICRO,
                gradient_checkpointing: bool = False, bf16: bool = False,
                passthrough: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for `trl.GRPOConfig` for one phase of `max_steps` optimizer steps.

    `passthrough` carries backend-specific hyperparameters (trainer.extra_hparams) named after GRPOConfig fields.
    Raises ValueError listing every problem when the hyperparameters cannot be mapped.
    """
    hp = hparams
    bad = problems(hp, micro_batch_size=micro_batch_size)
    if int(max_steps) < 1:
        bad.append(f"max_steps={max_steps!r} is not allowed: a phase needs at least 1 optimizer step")
    clash = sorted(set(passthrough or {}) & MANAGED_FIELDS)
    if clash:
        bad.append(f"pass-through hyperparameters {clash} would override GRPOConfig fields the backend sets itself")
    if bad:
        raise ValueError("; ".join(bad))
    n = int(hp["batch_size"]) * int(hp["rollouts"])
    micro = micro_batch(hp, micro_batch_size)
    accum = n // micro
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        # optimisation
        "learning_rate": float(hp["learning_rate"]),
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": float(hp["grad_clip"]),
        "max_steps": int(max_steps),
        "seed": int(seed),
        "data_seed": int(seed),
        # GRPO
        "beta": float(hp["kl_coef"]),
        "num_generations": int(hp["rollouts"]),
        "epsilon": float(hp["clip_ratio_low"]),
        "epsilon_high": float(hp["clip_ratio_high"]),
        "entropy_coef": float(hp["entropy_coef"]),
        "scale_rewards": "group" if bool(hp["norm_adv_by_std"]) else "none",
        "loss_type": loss_type,
        "num_iterations": 1,
        "temperature": float(hp["temperature"]),
        "top_p": 1.0,
        "top_k": 0,
        "max_completion_length": int(hp["response_length"]),
        # batch: one optimizer step = batch_size prompts x rollouts completions (see module docstring)
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": accum,
        "steps_per_generation": accum,
        # hardware
        "use_cpu": bool(use_cpu),
        "bf16": bool(bf16) and not use_cpu,
        "fp16": False,
        "gradient_checkpointing": bool(gradient_checkpointing),
        "use_vllm": False,
        "dataloader_num_workers": 0,
        # data
        "remove_unused_columns": False,  # the reward needs the answer and subtask columns
        "shuffle_dataset": True,
        "disable_dropout": True,  # policy and reference log-probs must agree at step 0
        # logging and saving: metrics every step through our callback; adapters are saved by the phase
        "report_to": "none",
        "logging_strategy": "steps",
        "logging_steps": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "disable_tqdm": True,
        "log_completions": False,
    }
    kwargs.update(dict(passthrough or {}))
    return kwargs


def lora_kwargs(rank: int) -> dict[str, Any]:
    """`peft.LoraConfig` arguments: rank r, alpha 2r, every linear projection of the transformer blocks."""
    return {
        "r": int(rank),
        "lora_alpha": 2 * int(rank),
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": "all-linear",  # q/k/v/o and gate/up/down; peft leaves the output head out
        "task_type": "CAUSAL_LM",
    }

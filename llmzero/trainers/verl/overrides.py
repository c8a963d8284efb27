"""Canonical hyperparameters, trainer options and cluster topology -> verl's command-line overrides (pure: no verl import).

The mapping (canonical name -> key of verl 0.9's `ppo_trainer.yaml`):

    learning_rate     -> actor_rollout_ref.actor.optim.lr              (constant schedule, no warmup, no weight decay)
    kl_coef           -> actor.use_kl_loss (kl_coef > 0) + actor.kl_loss_coef + actor.kl_loss_type (trainer option)
    temperature       -> actor_rollout_ref.rollout.temperature
    rollouts          -> actor_rollout_ref.rollout.n
    clip_ratio_low    -> actor.clip_ratio_low        (both bounds are set: verl ignores `clip_ratio` once they are)
    clip_ratio_high   -> actor.clip_ratio_high
    grad_clip         -> actor.optim.clip_grad       (`actor.grad_clip` is read by nothing in verl 0.9)
    entropy_coef      -> actor.entropy_coeff
    response_length   -> data.max_response_length
    norm_adv_by_std   -> algorithm.norm_adv_by_std_in_grpo
    batch_size        -> data.train_batch_size (prompts), actor.ppo_mini_batch_size = batch_size / trainer.mini_batches
    lora_rank         -> actor_rollout_ref.model.lora_rank, lora_alpha = 2 × rank, target_modules all-linear
    max_steps, epochs -> trainer.total_training_steps (the phase length, from the PhaseSpec)

as in trainer=trl (llmzero/trainers/trl/config_map.py): one step is batch_size prompts × rollouts completions, one
update with the default mini_batches=1, token-mean loss, KL against the base model (under LoRA verl's reference is the
actor with its adapter disabled). A child phase starts a fresh verl run (`trainer.resume_mode=disable`, a new
optimizer) from its parent's adapter (`model.lora_adapter_path`, which verl reads only when lora_rank > 0).

Topology (cluster.gpus_per_phase, gpus_per_node, rollout_tensor_parallel) -> trainer.n_gpus_per_node × trainer.nnodes
and rollout.tensor_model_parallel_size.

A task's search tool (RunFiles.search) -> rollout.multi_turn (enable, tool_config_path, max_user_turns = the task's
retriever.max_turns searches per response) and rollout.agent (our Search-R1 loop as default_agent_loop, registered by
agent_loop_config_path): rollouts and validation alike then call the tool (retrieval_loop.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...config.hydra_store import quoted_value
from ...config.verl_trainer import VerlTrainerConfig
from ..base import missing_hparams, sampling_problems
from .data import SEARCH_AGENT

USED = ("learning_rate", "kl_coef", "temperature", "clip_ratio_low", "clip_ratio_high", "grad_clip", "entropy_coef",
        "batch_size", "rollouts", "response_length", "norm_adv_by_std", "lora_rank")
CALLBACK = "llmzero.trainers.verl.callback.AdapterCheckpoints"
LOGGER_ENV = "VERL_FILE_LOGGER_PATH"
# For a model without a chat template: verl always applies one, and this one passes the prompt through unchanged.
PLAIN_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


@dataclass(frozen=True)
class Topology:
    """Where one phase runs: verl's n_gpus_per_node × nnodes, and GPUs per rollout engine."""

    n_gpus_per_node: int
    nnodes: int
    rollout_tp: int

    @property
    def gpus(self) -> int:
        return self.n_gpus_per_node * self.nnodes

    @classmethod
    def from_cluster(cls, cluster: Mapping[str, Any]) -> "Topology":
        """cluster.gpus_per_phase on nodes of cluster.gpus_per_node (0: one node); ValueError naming the key."""
        gpus = int(cluster.get("gpus_per_phase") or 0)
        per_node = int(cluster.get("gpus_per_node") or 0) or gpus
        tp = int(cluster.get("rollout_tensor_parallel") or 1)
        if gpus < 1:
            raise ValueError(f"cluster.gpus_per_phase={gpus} is not valid for trainer=verl: verl trains on GPUs only; "
                             "set cluster.gpus_per_phase to the GPUs one phase holds (e.g. 8), or use trainer=trl on "
                             "a machine without GPUs")
        if gpus % per_node:
            raise ValueError(f"cluster.gpus_per_node={per_node} does not divide cluster.gpus_per_phase={gpus}: a "
                             "phase takes whole nodes")
        if per_node % tp:
            raise ValueError(f"cluster.rollout_tensor_parallel={tp} does not divide the {per_node} GPUs of a node: "
                             "a rollout engine may not span nodes")
        return cls(n_gpus_per_node=per_node, nnodes=gpus // per_node, rollout_tp=tp)


@dataclass(frozen=True)
class SearchRun:
    """The files that give verl's rollouts the task's search tool (data.write_search_configs), and its turn limit."""

    tool_config: str
    agent_loops: str
    max_turns: int


@dataclass
class RunFiles:
    """The files and facts of one verl run that are not hyperparameters (the phase entry point fills them in)."""

    model_path: str
    train_files: str
    val_files: list[str]
    reward_module: str  # a file defining compute_score
    phase_config: str  # what the reward module builds the task from
    checkpoint_dir: str  # trainer.default_local_dir
    phase_dir: str
    max_prompt_length: int
    adapter: str | None = None  # a PEFT adapter folder to start from; None = a fresh adapter
    start_step: int = 0  # steps this phase had done before this run (a relaunch continues the numbering)
    chat_template: bool = True  # False: the prompt text goes to the model as is
    enable_thinking: bool | None = None
    seed: int = 0
    experiment: str = "phase"
    search: SearchRun | None = None  # the task's search tool; None: single-turn rollouts
    extra: dict[str, Any] = field(default_factory=dict)  # further key -> value, last (evaluation runs)


def _value(v: Any) -> str:
    """One value in Hydra's override grammar."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    text = str(v)
    plain = text and all(c.isalnum() or c in "/._-:@+" for c in text) and text not in ("null", "true", "false")
    return text if plain else quoted_value(text)


# The largest of vLLM's MaxLoRARanks (vllm/config/lora.py), the limit verl's get_vllm_max_lora_rank enforces at
# the rollout engine's start; checked here so the phase is refused before it reserves GPUs, even where vLLM is absent.
VLLM_MAX_LORA_RANK = 512


def problems(hparams: Mapping[str, Any], topology: Topology, opts: VerlTrainerConfig) -> list[str]:
    """The verl backend's own constraints (verl's config classes check the rest); each names key, value and rule."""
    hp = hparams
    missing = missing_hparams(hp, USED)
    if missing:
        return [f"hyperparameters {missing} are not set: the verl backend reads every one of {list(USED)}"]
    out: list[str] = []
    bs, n, rank = hp["batch_size"], hp["rollouts"], hp["lora_rank"]
    for key, value, low in (("batch_size", bs, 1), ("rollouts", n, 2), ("lora_rank", rank, 1),
                            ("response_length", hp["response_length"], 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            out.append(f"{key}={value!r} is not allowed: expected an integer ≥ {low}")
    if out:
        return out
    if opts.rollout_engine == "vllm" and rank > VLLM_MAX_LORA_RANK:
        out.append(f"lora_rank={rank} is more than trainer.rollout_engine=vllm serves: vLLM's largest LoRA rank is "
                   f"{VLLM_MAX_LORA_RANK} (verl rounds a rank up to one vLLM allows and refuses one above it); "
                   f"allowed: lora_rank ≤ {VLLM_MAX_LORA_RANK}")
    if bs % opts.mini_batches:
        out.append(f"batch_size={bs} is not divisible by trainer.mini_batches={opts.mini_batches}; verl splits a "
                   "step's prompts into equal mini-batches")
    else:
        mini = bs // opts.mini_batches
        if (mini * n) % topology.gpus:
            out.append(f"batch_size={bs} / trainer.mini_batches={opts.mini_batches} × rollouts={n} = {mini * n} "
                       f"sequences per update do not split evenly over the phase's {topology.gpus} GPUs; choose a "
                       f"batch_size making that a multiple of {topology.gpus}")
    out += sampling_problems(hp)
    return out


def phase_overrides(hparams: Mapping[str, Any], max_steps: int, opts: VerlTrainerConfig, topology: Topology,
                    run: RunFiles, eval_every: int = 1, save_every: int = 1) -> list[str]:
    """verl's overrides for one phase of `max_steps` optimizer steps; ValueError listing every problem."""
    bad = problems(hparams, topology, opts)
    if int(max_steps) < 1:
        bad.append(f"max_steps={max_steps!r} is not allowed: a phase needs at least 1 optimizer step")
    if bad:
        raise ValueError("; ".join(bad))
    hp = hparams
    kl = float(hp["kl_coef"])
    rank = int(hp["lora_rank"])
    actor, rollout, model = "actor_rollout_ref.actor", "actor_rollout_ref.rollout", "actor_rollout_ref.model"
    settings: dict[str, Any] = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": bool(hp["norm_adv_by_std"]),
        "algorithm.use_kl_in_reward": False,
        "data.train_files": run.train_files,
        "data.val_files": list(run.val_files),
        "data.train_batch_size": int(hp["batch_size"]),
        "data.max_prompt_length": int(run.max_prompt_length),
        "data.max_response_length": int(hp["response_length"]),
        "data.seed": int(run.seed),
        f"{model}.path": run.model_path,
        f"{model}.lora_rank": rank,
        f"{model}.lora_alpha": 2 * rank,
        f"{model}.target_modules": "all-linear",
        f"{model}.lora_adapter_path": run.adapter,
        f"{actor}.optim.lr": float(hp["learning_rate"]),
        f"{actor}.optim.lr_scheduler_type": "constant",
        f"{actor}.optim.lr_warmup_steps": 0,
        f"{actor}.optim.weight_decay": 0.0,
        f"{actor}.optim.clip_grad": float(hp["grad_clip"]),
        f"{actor}.use_kl_loss": kl > 0,
        f"{actor}.kl_loss_coef": kl,
        f"{actor}.kl_loss_type": opts.kl_loss_type,
        f"{actor}.clip_ratio_low": float(hp["clip_ratio_low"]),
        f"{actor}.clip_ratio_high": float(hp["clip_ratio_high"]),
        f"{actor}.entropy_coeff": float(hp["entropy_coef"]),
        f"{actor}.loss_agg_mode": opts.loss_agg_mode,
        f"{actor}.ppo_epochs": 1,
        f"{actor}.ppo_mini_batch_size": int(hp["batch_size"]) // opts.mini_batches,
        f"{actor}.ppo_micro_batch_size_per_gpu": opts.micro_batch_size_per_gpu,
        f"{actor}.checkpoint.save_contents": ["model"],  # a child never takes its parent's optimizer (§3.3)
        f"{rollout}.name": opts.rollout_engine,
        f"{rollout}.n": int(hp["rollouts"]),
        f"{rollout}.temperature": float(hp["temperature"]),
        f"{rollout}.tensor_model_parallel_size": topology.rollout_tp,
        f"{rollout}.gpu_memory_utilization": opts.gpu_memory_utilization,
        f"{rollout}.load_format": "safetensors",
        f"{rollout}.log_prob_micro_batch_size_per_gpu": opts.micro_batch_size_per_gpu,
        f"{rollout}.val_kwargs.do_sample": False,  # greedy validation, as trainer=trl scores
        f"{rollout}.val_kwargs.n": 1,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": opts.micro_batch_size_per_gpu,
        "reward.custom_reward_function.path": run.reward_module,
        "reward.custom_reward_function.name": "compute_score",
        "trainer.total_training_steps": int(max_steps),
        "trainer.total_epochs": int(max_steps),  # never the binding limit: every epoch has at least one step
        "trainer.n_gpus_per_node": topology.n_gpus_per_node,
        "trainer.nnodes": topology.nnodes,
        "trainer.save_freq": max(1, int(save_every)),
        "trainer.test_freq": max(1, int(eval_every)),
        "trainer.val_before_train": False,  # the parent's last validation already scored this adapter
        "trainer.resume_mode": "disable",
        "trainer.default_local_dir": run.checkpoint_dir,
        "trainer.max_actor_ckpt_to_keep": 1,  # each save becomes our checkpoints/step_<k>/ at once (callback.py)
        "trainer.logger": ["console", "file"],
        "trainer.project_name": "llmzero",
        "trainer.experiment_name": run.experiment,
        "trainer.checkpoint_callback_class": CALLBACK,
    }
    if not run.chat_template:
        settings[f"{model}.custom_chat_template"] = PLAIN_TEMPLATE
    if run.search is not None:
        settings.update({
            f"{rollout}.multi_turn.enable": True,
            f"{rollout}.multi_turn.tool_config_path": run.search.tool_config,
            f"{rollout}.multi_turn.max_user_turns": int(run.search.max_turns),  # tool answers per response
            f"{rollout}.multi_turn.max_assistant_turns": int(run.search.max_turns) + 1,
            f"{rollout}.agent.agent_loop_config_path": run.search.agent_loops,
            f"{rollout}.agent.default_agent_loop": SEARCH_AGENT,
        })
    out = [f"{k}={_value(v)}" for k, v in settings.items()]
    added: dict[str, Any] = {  # keys verl's YAML does not declare
        f"{actor}.checkpoint.save_lora_only": bool(opts.save_lora_only),
        "reward.custom_reward_function.reward_kwargs.phase_config": run.phase_config,
        "trainer.llmzero.phase_dir": run.phase_dir,
        "trainer.llmzero.start_step": int(run.start_step),
        f"ray_kwargs.ray_init.runtime_env.env_vars.{LOGGER_ENV}": logger_path(run.phase_dir, run.experiment),
    }
    added[f"{model}.override_config.attn_implementation"] = attention(opts.attn_implementation)
    if run.enable_thinking is not None:
        added["data.apply_chat_template_kwargs.enable_thinking"] = bool(run.enable_thinking)
    out += [f"+{k}={_value(v)}" for k, v in added.items()]
    out += [f"{k}={_value(v)}" for k, v in run.extra.items()]
    return out + list(opts.overrides)


def attention(choice: str) -> str:
    """trainer.attn_implementation as verl takes it: `auto` is flash_attention_2 where flash_attn is installed (on
    the machine composing the phase's overrides, which is the one running it), else sdpa."""
    if choice != "auto":
        return choice
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"


def logger_path(phase_dir: str, experiment: str) -> str:
    """verl's file logger opens its file with truncation, so each run (attempt, evaluation) writes its own."""
    return f"{phase_dir.rstrip('/')}/verl/{experiment}.metrics.jsonl"


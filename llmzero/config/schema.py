"""Structured configs: the typed schema behind every YAML preset in conf/, and the one home of every default.

Each group's presets start with `defaults: [<schema name>, _self_]`, so a wrong type
(`search.budget=abc`) or an unknown key is rejected by OmegaConf with the full key named.
The search's settings objects are these dataclasses themselves (`typed` below), so a default is
written here once; cross-field rules are checked in `__post_init__`, which runs when a setting
object is built, and name the key, the value and what is allowed. Registration with Hydra's
ConfigStore is in hydra_store.py. Backends (trainer, agent, cluster executor) are chosen by `_target_`,
so a user can point `trainer._target_` at their own class.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Type, TypeVar

from omegaconf import MISSING, DictConfig, OmegaConf

T = TypeVar("T")
LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo")  # those for which TRL 1.16 logs clip_ratio/region_mean
DTYPES = ("auto", "float32", "bfloat16", "float16")
ROLES = ("proposer", "stopper", "analyzer")  # the three agent roles (paper §3.4-3.5)
SEED_RANGE = "an int in [0, 2**32 - 1] (numpy and torch take no other seed)"


class ConfigError(ValueError):
    """A setting the search refuses; the message names the key, the value and what is allowed."""


class Choice(str, Enum):
    """A setting with a fixed set of values. As the type of a structured-config field it makes OmegaConf refuse
    any other value when the command line is composed, naming the allowed ones; being a str, it compares equal
    to its value, and it is written to YAML as that value."""

    def __str__(self) -> str:
        return str(self.value)


class WandbMode(Choice):
    offline = "offline"  # nothing needs a network; `wandb sync` later
    online = "online"
    disabled = "disabled"


class OverlayMode(Choice):
    auto = "auto"  # at every stop check when the agent reads images, otherwise once per phase when it ends
    every_check = "every_check"
    off = "off"


class Ablation(Choice):
    """Paper Table 2's ablations that change how the search runs (no visual input is agent.images=false)."""

    no_multistage = "no_multistage"  # every child trains from scratch: the best single-phase config of the budget


class OnFailure(Choice):
    fallback = "fallback"  # the heuristic agent answers for the node
    error = "error"  # the search stops (exit 3), its state saved


C = TypeVar("C", bound=Choice)


def _choice(kind: Type[C], value: Any, key: str) -> C:
    """`value` as a member of `kind` (a settings object built in Python, not through OmegaConf, gets a str)."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not valid: expected one of {[m.value for m in kind]}") from None


def plain(node: Any) -> Any:
    """A config node as plain Python (Hydra hands over DictConfig unless _convert_ is set); anything else as is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    # nan passes no comparison but inf passes `> 0`; no setting means anything by an infinite value.
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{key}={value!r} is not valid: expected {allowed}")


def unknown_keys(schema: type, node: Any, where: str) -> list[str]:
    """Keys of `node` that `schema` does not have (a `+key=` typo slips past Hydra's struct check), each with the
    nearest allowed names."""
    if not isinstance(node, (dict, DictConfig)):
        return []
    fields = {f.name: f for f in dataclasses.fields(schema)}
    out = []
    for key in node:
        f = fields.get(str(key))
        if f is None:
            near = difflib.get_close_matches(str(key), list(fields), n=3)
            hint = f"; did you mean {' or '.join(f'{where}.{n}' for n in near)}?" if near else ""
            out.append(f"{where}.{key} is not a setting{hint} (allowed: {sorted(fields)})")
        elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            out += unknown_keys(f.default_factory, node[key], f"{where}.{key}")
    return out


def typed(schema: Type[T], node: Any, where: str = "") -> T:
    """The settings object of `schema` for a config node, typed or not (a resumed search's saved
    config.yaml is plain YAML); building it runs the schema's own checks. An unknown key is a ConfigError."""
    unknown = unknown_keys(schema, node, where or schema.__name__)
    if unknown:
        raise ConfigError("; ".join(unknown))
    merged = OmegaConf.merge(OmegaConf.structured(schema), node)
    for f in dataclasses.fields(schema):
        # A mapping setting is what the node says, not a union with its default: `~sweeper.grid.lora_rank` removes
        # that axis (merging with the default would bring it back).
        if str(f.type).startswith("Dict") and isinstance(node, (dict, DictConfig)) and f.name in node:
            merged[f.name] = node[f.name]
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def check_section(node: Any, base: Type[T], where: str) -> T:
    """The settings object of a config section whose schema its preset chooses (`base` or a subclass of it, for
    a richer backend), its checks run. A resumed search's config.yaml is plain YAML: its keys that `base` knows
    are checked."""
    schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if isinstance(schema, type) and dataclasses.is_dataclass(schema) and issubclass(schema, base):
        return typed(schema, node, where)
    known = {f.name for f in dataclasses.fields(base)}
    items = node.items() if isinstance(node, (dict, DictConfig)) else []
    return typed(base, {k: v for k, v in items if k in known}, where)


@dataclass
class RetrieverConfig:
    """The search tool's documents (llmzero/tasks/retrieval.py): a Search-R1 retrieval server, or our BM25 index."""
    url: Optional[str] = None  # http://host:port of a server answering POST /retrieve
    corpus: Optional[str] = None  # without url: a JSONL of {"id", "contents"} documents, or a hub dataset of them
    topk: int = 3  # documents per search (the paper: 3)
    max_turns: int = 2  # searches per response (the paper: 2)

    def __post_init__(self) -> None:
        _require(self.topk >= 1, "task.retriever.topk", self.topk, "an int ≥ 1 (documents per search)")
        _require(self.max_turns >= 0, "task.retriever.max_turns", self.max_turns, "an int ≥ 0 (searches per response)")


@dataclass
class TaskConfig:
    _target_: str = MISSING  # the Task class (llmzero/tasks/base.py)
    name: str = MISSING
    description: str = ""
    train_size: int = 1000  # prompts in the training split (sets steps per epoch)
    val_size: int = 100
    test_size: int = 100
    subtasks: List[str] = field(default_factory=list)
    seed: int = 0
    hparams: Dict[str, Any] = field(default_factory=dict)  # overrides of the root configuration θ0
    # Benchmarks read from the Hugging Face hub (llmzero/tasks/hub.py); a generated task leaves these unset.
    dataset: Optional[str] = None  # the hub id
    revision: Optional[str] = None  # the pinned commit of the hub repository
    data_files: Optional[str] = None  # a local copy (file, glob or folder of json/jsonl/parquet/csv) read instead
    test_split: Optional[str] = None  # the data's own test split; None: `test` in any case, or the one `test*` split
    # A task with a search tool in its rollouts (papersearchqa); unset for the others.
    search_tool: Optional[bool] = None
    retriever: Optional[RetrieverConfig] = None

    def __post_init__(self) -> None:
        _require(bool(self.name), "task.name", self.name, "a non-empty name (it names the search directory)")
        _require(self.train_size >= 1, "task.train_size", self.train_size, "an int ≥ 1 (prompts)")
        _require(self.val_size >= 1, "task.val_size", self.val_size, "an int ≥ 1 (the search ranks phases on it)")
        _require(self.test_size >= 0, "task.test_size", self.test_size, "an int ≥ 0")
        _require(0 <= self.seed < 2 ** 32, "task.seed", self.seed, SEED_RANGE)


@dataclass
class ModelConfig:
    name: str = MISSING
    path: str = MISSING  # Hugging Face id or local directory
    params_b: float = 0.0  # size in billions, for cost reporting and the simulator
    hparams: Dict[str, Any] = field(default_factory=dict)
    build: Dict[str, Any] = field(default_factory=dict)  # builder options of a builtin: model (llmzero/models/tiny.py)
    # Prompting and evaluation a model family needs (conf/model/family/qwen3.yaml); unset keeps the backend's own.
    chat_template: Optional[bool] = None  # prompts through the tokenizer's chat template; None = when it has one
    enable_thinking: Optional[bool] = None  # the template's thinking switch (Qwen3); None = the template's default
    eval_max_new_tokens: Optional[int] = None  # greedy val/test length (the paper: 8192); the trainer's option wins
    gradient_checkpointing: Optional[bool] = None  # True turns it on whatever the trainer's option

    def __post_init__(self) -> None:
        _require(bool(self.name), "model.name", self.name, "a non-empty name (it names the search directory)")
        _require(self.eval_max_new_tokens is None or self.eval_max_new_tokens >= 1, "model.eval_max_new_tokens",
                 self.eval_max_new_tokens, "null or an int ≥ 1 (tokens)")
        _require(bool(self.path), "model.path", self.path, "a Hugging Face id, a local directory or builtin:<name>")
        _require(self.params_b >= 0, "model.params_b", self.params_b, "a float ≥ 0 (billions of parameters)")


@dataclass
class TrainerConfig:
    _target_: str = MISSING
    name: str = MISSING
    eval_every: int = 5  # steps between validation scorings
    save_every: int = 5  # steps between adapter checkpoints
    extra_hparams: Dict[str, Any] = field(default_factory=dict)  # pass-through keys: name -> spec
    hparams: Dict[str, Any] = field(default_factory=dict)  # overrides of θ0 this backend needs (after task, model)

    def __post_init__(self) -> None:
        _require(bool(self.name), "trainer.name", self.name, "a non-empty name (it names the search directory)")
        _require(self.eval_every >= 1, "trainer.eval_every", self.eval_every, "an int ≥ 1 (steps)")
        _require(self.save_every >= 1, "trainer.save_every", self.save_every, "an int ≥ 1 (steps)")


@dataclass
class SyntheticTrainerConfig(TrainerConfig):
    _target_: str = "llmzero.trainers.synthetic.SyntheticTrainer"
    name: str = "synthetic"
    step_delay_s: float = 0.0  # wall time per simulated step, to watch the live display or test stops
    memory_budget: float = 2.0e6  # simulated accelerator memory in (batch × rollouts × response_length) units
    noise: float = 0.01  # std of the validation-score noise
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.step_delay_s >= 0, "trainer.step_delay_s", self.step_delay_s, "a float ≥ 0 (seconds)")
        _require(self.memory_budget > 0, "trainer.memory_budget", self.memory_budget, "a float > 0")
        _require(self.noise >= 0, "trainer.noise", self.noise, "a float ≥ 0")
        _require(0 <= self.seed < 2 ** 32, "trainer.seed", self.seed, SEED_RANGE)


@dataclass
class TRLTrainerConfig(TrainerConfig):
    """Real GRPO + LoRA through TRL's GRPOTrainer (llmzero/trainers/trl); each phase is a subprocess."""

    _target_: str = "llmzero.trainers.trl.backend.TRLTrainer"
    name: str = "trl"
    loss_type: str = "dapo"  # dapo (token-mean over the step, verl's default) | grpo | dr_grpo | bnpo
    micro_batch_size: int = 0  # completions per forward/backward; 0 = the whole step (batch_size × rollouts)
    torch_threads: int = 1  # torch.set_num_threads in the phase process (0 = torch's default)
    log_every: int = 1  # steps between progress lines in log.txt (metrics.jsonl gets every step)
    eval_max_new_tokens: Optional[int] = None  # greedy val/test length; None = the phase's response_length
    eval_batch_size: int = 256  # prompts per greedy generate call
    eval_test: bool = False  # also score the test split at every evaluation (test/score in metrics.jsonl)
    # In flight, val/score is taken on this many val prompts (a fixed slice, drawn with the seed and stratified by
    # subtask; 0 = the whole split); a checkpoint that may become the phase's best is scored on the whole split
    # too (val_full/score), which picks the best checkpoint (llmzero/trainers/trl/eval_plan.py).
    val_slice: int = 64
    # Checkpoints: every step scored on the whole split, the last step, a stop, and every save_every steps as
    # resume points after a crash (the other steps' adapters would only be deleted unused).
    save_every: int = 25
    gradient_checkpointing: bool = False
    device: str = "auto"  # auto = cuda when available, else cpu
    dtype: str = "auto"  # auto = bfloat16 on a GPU that supports it, else float32
    eval_timeout_s: Optional[float] = None  # limit for one evaluate() subprocess

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.loss_type in LOSS_TYPES, "trainer.loss_type", self.loss_type, f"one of {list(LOSS_TYPES)}")
        _require(self.micro_batch_size >= 0, "trainer.micro_batch_size", self.micro_batch_size,
                 "an int ≥ 0 (0 = the whole step)")
        _require(self.torch_threads >= 0, "trainer.torch_threads", self.torch_threads, "an int ≥ 0 (0 = torch's default)")
        _require(self.log_every >= 1, "trainer.log_every", self.log_every, "an int ≥ 1 (steps)")
        _require(self.eval_max_new_tokens is None or self.eval_max_new_tokens >= 1, "trainer.eval_max_new_tokens",
                 self.eval_max_new_tokens, "null or an int ≥ 1")
        _require(self.eval_batch_size >= 1, "trainer.eval_batch_size", self.eval_batch_size, "an int ≥ 1")
        _require(self.val_slice >= 0, "trainer.val_slice", self.val_slice, "an int ≥ 0 (prompts; 0 = the whole val split)")
        _require(self.device == "auto" or self.device == "cpu" or self.device.split(":")[0] in ("cuda", "mps"),
                 "trainer.device", self.device, "auto, cpu, cuda, cuda:<index> or mps")
        _require(self.dtype in DTYPES, "trainer.dtype", self.dtype, f"one of {list(DTYPES)}")
        _require(self.eval_timeout_s is None or self.eval_timeout_s > 0, "trainer.eval_timeout_s",
                 self.eval_timeout_s, "null (no limit) or a float > 0 (seconds)")


@dataclass
class AgentConfig:
    _target_: str = MISSING
    name: str = MISSING


@dataclass
class HeuristicAgentConfig(AgentConfig):
    _target_: str = "llmzero.agents.heuristic.HeuristicAgent"
    name: str = "heuristic"
    seed: int = 0

    def __post_init__(self) -> None:
        _require(0 <= self.seed < 2 ** 32, "agent.seed", self.seed, SEED_RANGE)


@dataclass
class RetryConfig:
    max_retries: int = 4  # transient provider errors (429, 529, 5xx, timeouts) per call
    backoff_s: float = 2.0  # first wait, doubled each retry; a retry-after header wins
    max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        _require(self.max_retries >= 0, "agent.retry.max_retries", self.max_retries, "an int ≥ 0")
        _require(self.backoff_s >= 0, "agent.retry.backoff_s", self.backoff_s, "a float ≥ 0 (seconds)")
        _require(self.max_backoff_s >= self.backoff_s, "agent.retry.max_backoff_s", self.max_backoff_s,
                 f"a float ≥ agent.retry.backoff_s={self.backoff_s}")


@dataclass
class LLMAgentConfig(AgentConfig):
    model: str = MISSING
    role_models: Dict[str, Optional[str]] = field(
        default_factory=lambda: {"proposer": None, "stopper": None, "analyzer": None})  # per-role override
    api_key_env: Optional[str] = None  # the environment variable holding the key (never the key itself)
    max_reasks: int = 2  # re-asks with the validation error before the heuristic agent answers instead
    max_tokens: int = 2048
    temperature: Optional[float] = None
    timeout_s: float = 300.0
    max_images: int = 2  # metric plots attached per call (multimodal models only)
    images: bool = True  # false: no plot reaches the agent (paper Table 2's "no visual input" ablation)
    on_failure: OnFailure = OnFailure.fallback  # provider down after retries
    prompts_dir: Optional[str] = None  # default: the packaged prompts/
    prices: Dict[str, Any] = field(default_factory=dict)  # model -> {input, output, cache_read, cache_write} $/Mtok
    retry: RetryConfig = field(default_factory=RetryConfig)

    def __post_init__(self) -> None:
        _require(bool(self.model), "agent.model", self.model, "a model name")
        _require(self.max_reasks >= 0, "agent.max_reasks", self.max_reasks, "an int ≥ 0")
        _require(self.max_tokens >= 1, "agent.max_tokens", self.max_tokens, "an int ≥ 1")
        _require(self.temperature is None or 0 <= self.temperature <= 2, "agent.temperature", self.temperature,
                 "null (the provider's default) or a float in [0, 2]")
        _require(self.timeout_s > 0, "agent.timeout_s", self.timeout_s, "a float > 0 (seconds)")
        _require(self.max_images >= 0, "agent.max_images", self.max_images, "an int ≥ 0")
        self.on_failure = _choice(OnFailure, self.on_failure, "agent.on_failure")
        unknown = sorted(set(self.role_models) - set(ROLES))
        _require(not unknown, "agent.role_models", self.role_models, f"keys among {list(ROLES)}")


@dataclass
class ClaudeAgentConfig(LLMAgentConfig):
    _target_: str = "llmzero.agents.llm.providers.ClaudeAgent"
    name: str = "claude"
    model: str = "claude-sonnet-4-6"
    api_key_env: Optional[str] = "ANTHROPIC_API_KEY"
    base_url: Optional[str] = None  # default: the SDK's (ANTHROPIC_BASE_URL or api.anthropic.com)
    vision: bool = True
    cache_static: bool = True  # prompt caching of descriptions, instructions and schema


@dataclass
class LiteLLMAgentConfig(LLMAgentConfig):
    _target_: str = "llmzero.agents.llm.providers.LiteLLMAgent"
    name: str = "litellm"
    model: str = "openai/gpt-5"
    api_base: Optional[str] = None  # e.g. http://localhost:11434 for ollama
    vision: Optional[bool] = None  # None: ask litellm's model table whether the model takes images
    extra: Dict[str, Any] = field(default_factory=dict)  # passed through to litellm.completion


@dataclass
class ClusterConfig:
    _target_: str = "llmzero.executors.local.LocalExecutor"  # the executor: where phases run (llmzero/executors)
    name: str = "local"
    max_concurrent: int = 1  # phases run at once; >1 needs a backend that can share the hardware
    gpus_per_phase: int = 0  # GPUs one phase holds (GPU-hour accounting; 0 on a CPU)
    gpus_per_node: int = 0  # a multi-node phase's GPUs per node; 0 = all of a phase's GPUs on one node
    rollout_tensor_parallel: int = 1  # GPUs per rollout engine (verl: rollout.tensor_model_parallel_size)
    poll_interval_s: float = 0.2

    def __post_init__(self) -> None:
        _require(self.max_concurrent >= 1, "cluster.max_concurrent", self.max_concurrent, "an int ≥ 1")
        _require(self.gpus_per_phase >= 0, "cluster.gpus_per_phase", self.gpus_per_phase, "an int ≥ 0")
        _require(self.gpus_per_node >= 0, "cluster.gpus_per_node", self.gpus_per_node,
                 "an int ≥ 0 (0 = all of a phase's GPUs on one node)")
        _require(not (self.gpus_per_node and self.gpus_per_phase % self.gpus_per_node), "cluster.gpus_per_node",
                 self.gpus_per_node, f"0 or a divisor of cluster.gpus_per_phase={self.gpus_per_phase} (a phase takes "
                 "whole nodes)")
        _require(self.rollout_tensor_parallel >= 1, "cluster.rollout_tensor_parallel", self.rollout_tensor_parallel,
                 "an int ≥ 1")
        _require(self.poll_interval_s > 0, "cluster.poll_interval_s", self.poll_interval_s, "a float > 0 (seconds)")


@dataclass
class UCTParams:
    """Appendix B.6 defaults of eqs. 5-8 (read by llmzero.search.uct)."""

    c: float = 1.414  # exploration constant C in eqs. 5-6
    temperature: float = 0.3  # T of the shaping f_T in eq. 7
    w_fail: float = 0.5  # w_f in eq. 8
    w_early: float = 0.3  # w_e in eq. 8
    fail_forgiven: int = 2  # o_f in eq. 8

    def __post_init__(self) -> None:
        _require(self.c >= 0, "search.uct.c", self.c, "a float ≥ 0")
        # f_T divides by T and by e^{1/T} - 1: T must be positive and not so small that e^{1/T} overflows
        _require(self.temperature >= 0.002, "search.uct.temperature", self.temperature, "a float ≥ 0.002")
        _require(self.w_fail >= 0, "search.uct.w_fail", self.w_fail, "a float ≥ 0")
        _require(self.w_early >= 0, "search.uct.w_early", self.w_early, "a float ≥ 0")
        _require(self.fail_forgiven >= 0, "search.uct.fail_forgiven", self.fail_forgiven, "an int ≥ 0")


@dataclass
class TreeLimits:
    """Appendix B.6 branching limits (§3.2)."""

    max_evolve_children: int = 2  # k_max
    max_debug_children: int = 3
    max_debug_depth: int = 5

    def __post_init__(self) -> None:
        for key in ("max_evolve_children", "max_debug_children", "max_debug_depth"):
            value = getattr(self, key)
            _require(value >= 1, f"search.limits.{key}", value, "an int ≥ 1")


@dataclass
class EarlyStopConfig:
    enabled: bool = True
    interval_s: Optional[float] = None  # paper: 900 s; None = use interval_steps only
    interval_steps: Optional[int] = 10
    min_evals: int = 3  # validation points the running phase needs before the first check (val is noisy)
    overlays: OverlayMode = OverlayMode.auto  # when running-vs-incumbent plots are drawn
    # The heuristic stops only on gaps wider than noise_units × σ, σ being one evaluation's noise read from the
    # tree's own curves (metrics/stop_evidence.py); noise_prior stands in until there are enough evaluations,
    # noise_floor keeps a flat curve of identical scores from making every gap look significant.
    noise_units: float = 2.0
    noise_prior: float = 0.02
    noise_floor: float = 0.005

    def __post_init__(self) -> None:
        _require(self.interval_s is None or self.interval_s > 0, "search.early_stop.interval_s", self.interval_s,
                 "null or a float > 0 (seconds)")
        _require(self.interval_steps is None or self.interval_steps >= 1, "search.early_stop.interval_steps",
                 self.interval_steps, "null or an int ≥ 1")
        _require(self.min_evals >= 1, "search.early_stop.min_evals", self.min_evals, "an int ≥ 1")
        for key in ("noise_units", "noise_prior", "noise_floor"):
            value = getattr(self, key)
            _require(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
                     f"search.early_stop.{key}", value, "a finite float ≥ 0")
        _require(not self.enabled or self.interval_s is not None or self.interval_steps is not None,
                 "search.early_stop.interval_steps", self.interval_steps,
                 "an int ≥ 1 when search.early_stop.interval_s is null too (the stopper would never look; "
                 "to switch it off, set search.early_stop.enabled=false)")
        self.overlays = _choice(OverlayMode, self.overlays, "search.early_stop.overlays")


@dataclass
class SearchConfig:
    budget: int = 8  # iterations = phases run (paper: 4-16)
    seed: int = 0
    dir: Optional[str] = None  # run directory; defaults to Hydra's run dir
    resume: Optional[str] = None  # continue the search in this directory with its saved config
    max_gpu_hours: Optional[float] = None
    max_agent_usd: Optional[float] = None
    max_trainer_steps: Optional[int] = None  # optimizer steps over all phases: equal compute against a baseline
    rho_min: float = 0.2  # minimum from-scratch ratio (§3.3)
    max_steps_per_phase: int = 200
    display: bool = True
    ablation: Optional[Ablation] = None
    uct: UCTParams = field(default_factory=UCTParams)
    limits: TreeLimits = field(default_factory=TreeLimits)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    space: Dict[str, Any] = field(default_factory=dict)  # canonical hyperparameters: name -> HParamSpec fields

    def __post_init__(self) -> None:
        _require(self.budget >= 1, "search.budget", self.budget, "an int ≥ 1")
        for key in ("dir", "resume"):
            value = getattr(self, key)
            _require(value is None or bool(str(value).strip()), f"search.{key}", value,
                     "a directory path, or null (leave it unset) for the default")
        _require(0 <= self.seed < 2 ** 32, "search.seed", self.seed, SEED_RANGE)
        _require(0.0 <= self.rho_min <= 1.0, "search.rho_min", self.rho_min, "a float in [0, 1]")
        _require(self.max_steps_per_phase >= 1, "search.max_steps_per_phase", self.max_steps_per_phase,
                 "an int ≥ 1")
        for key in ("max_gpu_hours", "max_agent_usd", "max_trainer_steps"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"search.{key}", value, "null (no cap) or a number > 0")
        if self.ablation is not None:
            self.ablation = _choice(Ablation, self.ablation, "search.ablation")


@dataclass
class WandbConfig:
    mode: WandbMode = WandbMode.offline
    project: str = "llmzero"
    entity: Optional[str] = None
    dir: Optional[str] = None  # default: the search directory (runs land in <dir>/wandb/)
    tags: List[str] = field(default_factory=list)
    init_timeout_s: float = 90.0  # online mode: how long wandb.init waits for the server
    finish_timeout_s: float = 60.0  # online mode: upload wait at run.finish (rest: `wandb sync`)

    def __post_init__(self) -> None:
        self.mode = _choice(WandbMode, self.mode, "wandb.mode")
        _require(bool(self.project), "wandb.project", self.project, "a non-empty W&B project name")
        _require(self.init_timeout_s > 0, "wandb.init_timeout_s", self.init_timeout_s, "a float > 0 (seconds)")
        _require(self.finish_timeout_s > 0, "wandb.finish_timeout_s", self.finish_timeout_s, "a float > 0 (seconds)")
        self.tags = [str(t) for t in (self.tags or [])]

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

"""`builtin:tiny`: a small Qwen3 built offline and warm-started on the task, for CPU runs and tests.

`build_tiny_model` initialises a Qwen3ForCausalLM sized for the character tokenizer (random
weights from the seed), optionally warm-starts it with TRL's SFTTrainer (prompt -> answer + eos,
loss on the answer only) and saves model and tokenizer with `save_pretrained`.

The warm start is meant to leave the model partly competent, so that RL has room to improve it. The default
(chosen by measurement, see benchmarks/README.md) stops a constant-rate warm start of three layers at 1500 steps,
mid-way: two-digit sums mostly right, three-digit sums and products partly (val about 0.70, 0.49 and 0.22). Its
errors are noise around answers the model half knows, which GRPO sharpens within one phase; a warm start run to
convergence (a decayed rate, or longer) leaves errors the model does not know how to fix, and RL barely moved it.
The warm-start data is the task's train split grown with the same task's other seeds (see `sft_examples`): 512
examples teach a model this small to memorise, not to add; `sft_balance` repeats the scarce products (720 exist)
so that they are a third of it. `sft_target` > 0 stops early once the greedy accuracy on the held-out probe
prompts (measured every `sft_eval_every` steps) reaches it.

Such a build is chaotic in the host's float kernels: the same options gave base val 0.23 on one CPU and 0.05 on
another. So the default build for the default task is not built here but shipped (embedded.py); this builder
made it, and makes any other.

`ensure_tiny_model` builds once per (options, task, BUILDER_VERSION) and caches the result under
`$LLMZERO_CACHE/models/tiny-<hash12>` (default cache: `$XDG_CACHE_HOME/llmzero` or
`~/.cache/llmzero`). Builds go to a temporary directory beside it and are renamed into place, under
a file lock, so concurrent processes and killed builds never leave a half-written model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from .warm_start import (EVAL_MAX_NEW_TOKENS, PROBE_PER_SUBTASK, balance_subtasks, quiet_hf_logs, run_sft, sft_examples,
                         split_probe)

__all__ = ["BUILDER_VERSION", "DEFAULT_OPTIONS", "PROBE_PER_SUBTASK", "build_tiny_model", "cache_key", "cache_root",
           "cached_tiny_model", "ensure_tiny_model", "evaluate_greedy", "read_build_info", "resolve_options",
           "sft_examples", "split_probe"]

BUILDER_VERSION = 2  # 2: sft_balance (and the shipped default, embedded.py)

# The default builder options, written only here (conf/model/tiny.yaml sets `build:` overrides, none by default).
DEFAULT_OPTIONS: dict[str, Any] = {
    "hidden_size": 64,
    "layers": 3,  # two layers cannot carry a digit: three-digit sums stayed near 0.1 however long the warm start
    "heads": 4,
    "kv_heads": 2,
    "intermediate_size": 256,
    "sft_steps": 1500,  # a fixed length (see the module docstring), or at most that with sft_target > 0
    "sft_lr": 3.0e-3,
    "sft_scheduler": "constant_with_warmup",  # transformers lr_scheduler_type; warmup is 5% of sft_steps
    "sft_batch_size": 64,
    "sft_pool_size": 12000,  # warm-start examples (see sft_examples); <= the task's train size: its train split
    "sft_balance": True,  # repeat a scarce subtask's examples up to the commonest one's count (balance_subtasks)
    "sft_target": 0.0,  # stop when greedy accuracy on held-out probe prompts reaches this (0: never)
    "sft_eval_every": 50,  # steps between probe evaluations
    "seed": 0,
}

BUILD_THREADS = 1  # a model this small trains faster on one thread, and does not stall when cores are shared


def build_tiny_model(out_dir: str | os.PathLike, task: Any, *,
                     hidden_size: int = DEFAULT_OPTIONS["hidden_size"],
                     layers: int = DEFAULT_OPTIONS["layers"],
                     heads: int = DEFAULT_OPTIONS["heads"],
                     kv_heads: int = DEFAULT_OPTIONS["kv_heads"],
                     intermediate_size: int | None = DEFAULT_OPTIONS["intermediate_size"],
                     sft_steps: int = DEFAULT_OPTIONS["sft_steps"],
                     sft_lr: float = DEFAULT_OPTIONS["sft_lr"],
                     sft_scheduler: str = DEFAULT_OPTIONS["sft_scheduler"],
                     sft_batch_size: int = DEFAULT_OPTIONS["sft_batch_size"],
                     sft_pool_size: int = DEFAULT_OPTIONS["sft_pool_size"],
                     sft_balance: bool = DEFAULT_OPTIONS["sft_balance"],
                     sft_target: float = DEFAULT_OPTIONS["sft_target"],
                     sft_eval_every: int = DEFAULT_OPTIONS["sft_eval_every"],
                     seed: int = DEFAULT_OPTIONS["seed"],
                     progress: bool = True) -> Path:
    """Build (and warm-start when sft_steps > 0) a tiny Qwen3 for `task`; save it into out_dir.

    The directory gets the model and tokenizer (`save_pretrained`) and `build.json` with the options,
    the warm-start record (steps run, probe accuracy curve) and the build seconds.
    """
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from .tokenizer import build_tokenizer

    if hidden_size % heads:
        raise ValueError(f"hidden_size={hidden_size} is not divisible by heads={heads}")
    if heads % kv_heads:
        raise ValueError(f"heads={heads} is not divisible by kv_heads={kv_heads}")
    options = {k: v for k, v in locals().items() if k in DEFAULT_OPTIONS}
    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",  # quickest for short sequences; run_sft switches to sdpa for long ones
    )
    sft_record: dict[str, Any] = {"steps": 0}
    with _torch_threads(BUILD_THREADS):
        with _torch_seed(seed):
            model = Qwen3ForCausalLM(config)
        model.generation_config = GenerationConfig(
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        )
        if sft_steps > 0:
            train, probe = split_probe(sft_examples(task, sft_pool_size))
            if sft_balance:
                train = balance_subtasks(train)
            model, sft_record = run_sft(model, tokenizer, task, train, probe, steps=sft_steps, lr=sft_lr,
                                     scheduler=sft_scheduler, batch_size=sft_batch_size, target=sft_target,
                                     eval_every=sft_eval_every, seed=seed, progress=progress)
    model.eval()
    with quiet_hf_logs():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    info = {"builder_version": BUILDER_VERSION, "options": options, "sft": sft_record,
            "params": sum(p.numel() for p in model.parameters()),
            "build_seconds": round(time.monotonic() - t0, 2)}
    (out / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


@contextlib.contextmanager
def _torch_seed(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):  # the caller's RNG state comes back afterwards
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def evaluate_greedy(path_or_model: Any, task: Any, split: str = "val", tokenizer: Any = None,
                    max_new_tokens: int = EVAL_MAX_NEW_TOKENS) -> dict[str, float]:
    """`task.score` of greedy completions on a split (overall and per subtask)."""
    from .loading import greedy_complete, load_model_and_tokenizer

    if tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(str(path_or_model))
    else:
        model = path_or_model
    examples = task.splits()[split]
    completions = greedy_complete(model, tokenizer, [ex.prompt for ex in examples], max_new_tokens)
    return task.score(completions, examples)


# ----------------------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """`$LLMZERO_CACHE`, else `$XDG_CACHE_HOME/llmzero`, else `~/.cache/llmzero`."""
    env = os.environ.get("LLMZERO_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llmzero"


def resolve_options(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """DEFAULT_OPTIONS updated with `options`; unknown keys are rejected."""
    opts = dict(DEFAULT_OPTIONS)
    for k, v in dict(options or {}).items():
        if k not in DEFAULT_OPTIONS:
            raise ValueError(f"model.build.{k} is not a builder option; known: {sorted(DEFAULT_OPTIONS)}")
        opts[k] = v
    return opts


def task_fingerprint(task: Any) -> dict[str, Any]:
    """What identifies the task's training data: class, name, seed, sizes, subtasks, and a digest of train."""
    train = task.splits()["train"]
    digest = hashlib.sha256()
    for ex in train:
        digest.update(json.dumps([ex.prompt, ex.answer, ex.subtask]).encode())
        digest.update(b"\0")
    sizes = getattr(task, "sizes", None)
    return {
        "class": f"{type(task).__module__}.{type(task).__qualname__}",
        "name": getattr(task, "name", None),
        "seed": getattr(task, "seed", None),
        "sizes": dict(sizes) if isinstance(sizes, dict) else sizes,
        "subtasks": list(getattr(task, "subtasks", []) or []),
        "train_sha256": digest.hexdigest(),
    }


def cache_key(task: Any, options: dict[str, Any] | None = None) -> str:
    """12 hex digits of the hash of the builder version, resolved options and task fingerprint."""
    payload = {"builder_version": BUILDER_VERSION, "options": resolve_options(options),
               "task": task_fingerprint(task)}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cached_tiny_model(task: Any, options: dict[str, Any] | None = None,
                      cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The cached build for (task, options), or None when it has not been built yet."""
    models_dir = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "models"
    final = models_dir / f"tiny-{cache_key(task, resolve_options(options))}"
    return final if _complete(final) else None


def ensure_tiny_model(task: Any, options: dict[str, Any] | None = None, cache_dir: str | os.PathLike | None = None,
                      progress: bool = True) -> Path:
    """The cached tiny model for (task, options), built on first use (the shipped default is resolve.py's first
    choice, before this cache)."""
    opts = resolve_options(options)
    models_dir = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(task, opts)
    final = models_dir / f"tiny-{key}"
    if _complete(final):
        return final
    with FileLock(str(models_dir / f".tiny-{key}.lock")):  # one builder per key; released if it dies
        if _complete(final):  # another process built it while we waited
            return final
        # Whoever holds the lock owns the temporaries of this key: earlier ones are from killed builds.
        for stale in models_dir.glob(f".tmp-tiny-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # incomplete (should not happen with the rename, but be safe)
            shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-tiny-{key}-", dir=models_dir))
        try:
            build_tiny_model(tmp, task, progress=progress, **opts)
            t1 = time.monotonic()
            info = read_build_info(tmp)
            info["task"] = task_fingerprint(task)
            with quiet_hf_logs():
                info["val"] = evaluate_greedy(tmp, task, "val")
            info["eval_seconds"] = round(time.monotonic() - t1, 2)
            info["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            (tmp / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            make_readable(tmp)  # mkdtemp made it private
            try:
                os.rename(tmp, final)
            except OSError:
                if not _complete(final):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def make_readable(path: Path) -> None:
    """A build's folder and files as readable as any new ones: mkdtemp and safetensors make them private, and a cache
    or an install is read by other users."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    for file in path.iterdir():
        if file.is_file():
            os.chmod(file, 0o666 & ~umask)


def _complete(path: Path) -> bool:
    return (path / "build.json").is_file() and (path / "config.json").is_file()


def read_build_info(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(path) / "build.json").read_text())

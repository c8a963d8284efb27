"""Model paths, loading and batched greedy decoding.

`model.path` in the config is one of
    builtin:tiny        a small Qwen3 built offline and warm-started on the task (cached, see tiny.py)
    /a/local/directory  a saved model (save_pretrained layout)
    Qwen/Qwen3-4B       a Hugging Face hub id, passed to from_pretrained unchanged
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

BUILTIN_PREFIX = "builtin:"


def resolve_model_path(model_cfg: dict[str, Any], task: Any = None) -> str:
    """The path or hub id that `from_pretrained` should load for this model config."""
    path = str(model_cfg["path"])
    if path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX):]
        if name != "tiny":
            raise ValueError(f"model.path={path!r}: unknown builtin model {name!r}; known: builtin:tiny")
        if task is None:
            raise ValueError("model.path=builtin:tiny is built for a task, but no task was given")
        from .tiny import ensure_tiny_model

        build = model_cfg.get("build") or {}
        return str(ensure_tiny_model(task, dict(build)))
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        return os.path.abspath(expanded)
    return path  # a hub id; from_pretrained reports its own error if it cannot be fetched


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Pad with eos when the tokenizer has no pad token, and pad on the left (for generation)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model_and_tokenizer(path: str, *, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """`AutoModelForCausalLM` and `AutoTokenizer` from a local directory or hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.to(device)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def greedy_complete(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
                    batch_size: int = 64) -> list[str]:
    """Greedy continuations of `prompts` (the generated text only, cut at the first eos).

    Prompts are batched by length (less padding), left-padded, and returned in the input order.
    """
    import torch

    if not prompts:
        return []
    prompts = list(prompts)
    eos_ids = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = getattr(model, "training", False)
    model.eval()
    device = _model_device(model)
    lengths = [len(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: list[str] = [""] * len(prompts)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True)
                enc = {k: v.to(device) for k, v in enc.items()}
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None, top_p=None, top_k=None,
                    pad_token_id=pad_id,
                    eos_token_id=eos_ids,
                )
                new = gen[:, enc["input_ids"].shape[1]:].tolist()
                for i, ids in zip(idx, new):
                    for j, t in enumerate(ids):
                        if t in eos_ids:
                            ids = ids[:j]
                            break
                    out[i] = tokenizer.decode(ids, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    gen_cfg = getattr(model, "generation_config", None)
    cand = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    for c in ([cand] if isinstance(cand, int) else list(cand or [])) + [tokenizer.eos_token_id]:
        if c is not None and c not in ids:
            ids.append(int(c))
    if not ids:
        raise ValueError("neither the model nor the tokenizer names an eos token")
    return ids

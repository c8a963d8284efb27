"""Loading a model and its tokenizer, rendering prompts for it, and batched greedy decoding (what a `model.path`
names: resolve.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

def prepare_tokenizer(tokenizer: Any) -> Any:
    """Pad with eos when the tokenizer has no pad token, and pad on the left (for generation)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def prompt_renderer(tokenizer: Any, model_cfg: dict[str, Any]) -> Callable[[str], str]:
    """How a task's plain-text prompt becomes the model's input text: through the tokenizer's chat template as one
    user turn (with the family's thinking switch) when `model.chat_template` says so or, unset, when the tokenizer
    has a template; unchanged otherwise (builtin:tiny's character tokenizer has none)."""
    wanted = model_cfg.get("chat_template")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if wanted and not has_template:
        raise ValueError(f"model.chat_template=true, but the tokenizer of model.path={model_cfg.get('path')!r} has "
                         "no chat template; set model.chat_template=false to give it the prompts as plain text")
    if not (has_template if wanted is None else wanted):
        return lambda prompt: prompt
    extra = {} if model_cfg.get("enable_thinking") is None else {"enable_thinking": bool(model_cfg["enable_thinking"])}

    def render(prompt: str) -> str:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True, **extra)

    return render


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
    eos_ids = eos_token_ids(model, tokenizer)
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
                    use_cache=True,  # a policy trained with gradient checkpointing has it off in its config
                    temperature=None, top_p=None, top_k=None,
                    pad_token_id=pad_id,
                    eos_token_id=eos_ids,
                )
                # generation pads a finished row with special tokens (eos/pad), which decoding drops
                texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, text in zip(idx, texts):
                    out[i] = text
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a response: the generation config's eos ids and the tokenizer's."""
    ids: list[int] = []
    gen_cfg = getattr(model, "generation_config", None)
    cand = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    for c in ([cand] if isinstance(cand, int) else list(cand or [])) + [tokenizer.eos_token_id]:
        if c is not None and c not in ids:
            ids.append(int(c))
    if not ids:
        raise ValueError("neither the model nor the tokenizer names an eos token")
    return ids

"""Base model, LoRA adapters and greedy scoring shared by the phase and evaluate processes.

Only the LoRA adapter is ever checkpointed (paper §3.3): `checkpoints/step_<k>/` holds peft's
`adapter_model.safetensors` + `adapter_config.json`, a `phase.json` (node, step, hyperparameters) and, when that step
was evaluated, `val.json`. A phase always starts from a FRESH adapter on the base model and copies a parent's adapter
weights into it (`load_adapter_weights`), so the optimizer, the LoRA rank check and the reference model are all under
our control (see phase.py for why the reference stays the base model). Scoring a checkpoint, where none of that
matters, loads it with peft's own `PeftModel.from_pretrained`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...state.phase_dir import adapter_rank
from .config_map import lora_kwargs


def select_device(device: str = "auto") -> str:
    import torch

    if device and device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def select_dtype(dtype: str | None, device: str) -> Any:
    """"auto": bfloat16 on a GPU that supports it, float32 otherwise (always float32 on a CPU)."""
    import torch

    if dtype and dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base(model_cfg: dict[str, Any], task: Any, *, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any, str]:
    """(model, tokenizer, resolved path) of the base model named by the model config."""
    from ...models.loading import load_model_and_tokenizer
    from ...models.resolve import resolve_model_path

    path = resolve_model_path(model_cfg, task)
    model, tokenizer = load_model_and_tokenizer(path, dtype=dtype, device=device)
    return model, tokenizer, path


def lora_config(rank: int) -> Any:
    from peft import LoraConfig

    return LoraConfig(**lora_kwargs(rank))


def load_adapter_weights(peft_model: Any, ckpt: str | Path) -> None:
    """Copy the adapter weights saved in `ckpt` into the (fresh) "default" adapter of `peft_model`.

    The ranks must match (lora_rank is fixed along a strategy path); every LoRA tensor must be found and used.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    ckpt = Path(ckpt)
    want = int(peft_model.peft_config["default"].r)
    have = adapter_rank(ckpt)
    if have != want:
        raise ValueError(f"lora_rank={want} does not match the checkpoint {ckpt} (r={have}); lora_rank is fixed along "
                         "a strategy path because only the adapter is checkpointed")
    device = next(peft_model.parameters()).device
    weights = load_peft_weights(str(ckpt), device=str(device))
    expected = set(get_peft_model_state_dict(peft_model).keys())
    missing = sorted(expected - set(weights))
    if missing:
        raise ValueError(f"adapter checkpoint {ckpt} lacks {len(missing)} LoRA tensors, e.g. {missing[:3]}")
    result = set_peft_model_state_dict(peft_model, weights)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) or [] if "lora_" in k]
    if unexpected:
        raise ValueError(f"adapter checkpoint {ckpt} has tensors the model does not, e.g. {unexpected[:3]}")


def policy_from_checkpoint(base_model: Any, ckpt: str | Path | None) -> Any:
    """`base_model` with `ckpt`'s adapter loaded for inference (peft's own loader), or the base model for None."""
    from peft import PeftModel

    if ckpt is None:
        return base_model
    adapter_rank(ckpt)  # a clear error when ckpt is not an adapter checkpoint
    return PeftModel.from_pretrained(base_model, str(ckpt), is_trainable=False).eval()


def save_adapter(peft_model: Any, path: str | Path, meta: dict[str, Any], val: dict[str, float] | None) -> None:
    """Write the adapter only (peft save_pretrained of the PeftModel), then COMPLETE (mark_checkpoint_complete)."""
    from ..base import mark_checkpoint_complete

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "COMPLETE").unlink(missing_ok=True)  # re-saving a step: it is incomplete until the end
    peft_model.save_pretrained(str(path))
    # plain writes: mark_checkpoint_complete syncs the whole directory before the marker
    (path / "phase.json").write_text(json.dumps(meta, indent=2))
    if val is not None:
        (path / "val.json").write_text(json.dumps({"step": meta.get("step"), "global_step": meta.get("global_step"), **val}))
    mark_checkpoint_complete(path)


def rendered(splits: dict[str, list[Any]], tokenizer: Any, model_cfg: dict[str, Any]) -> dict[str, list[Any]]:
    """The splits' examples with their prompts as the model reads them (models/loading.prompt_renderer)."""
    from dataclasses import replace

    from ...models.loading import prompt_renderer

    render = prompt_renderer(tokenizer, model_cfg)
    return {k: [replace(ex, prompt=render(ex.prompt)) for ex in v] for k, v in splits.items()}


@contextmanager
def adapter_merged(model: Any) -> Iterator[Any]:
    """The LoRA adapter folded into the base weights while greedy decoding runs, when that is exact enough.

    Decoding a small model is dominated by per-layer overhead, and every LoRA layer adds a second matmul pair
    (merged: about a quarter less time per evaluation on the CPU tiny model). Merging and unmerging in float32
    moves a weight by about 1e-8, far below one optimizer step; in bfloat16 it would round every weight the
    adapter touches, so then the adapter stays separate."""
    import torch

    floats = {p.dtype for p in model.parameters()}
    merge = hasattr(model, "merge_adapter") and floats == {torch.float32}
    if merge:
        model.merge_adapter()
    try:
        yield model
    finally:
        if merge:
            model.unmerge_adapter()


def greedy_scores(model: Any, tokenizer: Any, task: Any, examples: Sequence[Any], max_new_tokens: int,
                  batch_size: int = 64) -> dict[str, float]:
    """task.score of greedy completions: {"score": mean, <subtask>: mean, ...}."""
    from ...models.loading import eos_token_ids, greedy_complete
    from ...tasks.base import task_tool

    prompts = [ex.prompt for ex in examples]
    tool = task_tool(task)
    if tool is not None:  # val and test see the tool the rollouts use
        from .retrieval_rollouts import tool_greedy_complete

        completions = tool_greedy_complete(model, tokenizer, prompts, tool, int(max_new_tokens),
                                           eos_token_ids(model, tokenizer), batch_size=int(batch_size))
    else:
        completions = greedy_complete(model, tokenizer, prompts, int(max_new_tokens), batch_size=int(batch_size))
    return {k: float(v) for k, v in task.score(completions, list(examples)).items()}

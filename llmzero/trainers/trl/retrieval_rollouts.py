"""Rollouts with a search tool (the Search-R1 protocol, llmzero.tasks.retrieval.SearchTool) on the TRL backend.

TRL 1.16's own tool loop calls Python functions through the chat template's tool-call format; the paper's
PaperSearchQA setting is Search-R1's plain-text protocol instead (`<search>q</search>` answered by
`<information>…</information>`), so the phase hands GRPOTrainer a `rollout_func` (TRL's hook for custom generation)
built here. Each response is generated until it closes a search call, the retrieved documents are appended, and
generation resumes, at most `tool.max_turns` times, within `max_new_tokens` tokens in all. The appended documents
are returned with `env_mask` 0, which TRL uses as its tool mask: they are context, never trained on. Validation uses
the same loop greedily (`tool_greedy_complete`), so val and training see the same tool.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..retrieval_turns import SEARCH, turn_end

log = logging.getLogger("llmzero.phase")


@dataclass
class Rollout:
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)  # 1: the model wrote the token, 0: the tool did
    queries: list[str] = field(default_factory=list)
    done: bool = False


def run_with_tool(model: Any, tokenizer: Any, prompt_ids: Sequence[list[int]], tool: Any, max_new_tokens: int,
                  generation_config: Any, eos_ids: Sequence[int]) -> list[Rollout]:
    """One response per prompt id list, generated in rounds: every unfinished response continues until it ends,
    runs out of tokens, or closes a search call, which is answered before the next round."""
    import torch

    eos = set(int(e) for e in eos_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos))
    device = next(model.parameters()).device
    rollouts = [Rollout(prompt_ids=list(p)) for p in prompt_ids]
    while True:
        active = [r for r in rollouts if not r.done and len(r.completion_ids) < max_new_tokens]
        for r in rollouts:
            r.done = r.done or len(r.completion_ids) >= max_new_tokens
        if not active:
            return rollouts
        seqs = [r.prompt_ids + r.completion_ids for r in active]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):  # left padding, as generation needs
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        searching = any(len(r.queries) < tool.max_turns for r in active)
        config = copy.deepcopy(generation_config)
        config.max_new_tokens = max(max_new_tokens - len(r.completion_ids) for r in active)
        config.eos_token_id, config.pad_token_id = sorted(eos), pad
        config.stop_strings = [tool.stop] if searching else None
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                                 tokenizer=tokenizer)
        new = out[:, width:].tolist()
        asked: list[tuple[Rollout, str]] = []
        for r, row in zip(active, new):
            room = max_new_tokens - len(r.completion_ids)
            turn, why = turn_end(tokenizer, row[:room], eos, tool.stop if searching else None)
            r.completion_ids += turn
            r.env_mask += [1] * len(turn)
            query = tool.query(tokenizer.decode(r.completion_ids, skip_special_tokens=True)) if why == SEARCH else None
            if query is not None and len(r.queries) < tool.max_turns:
                asked.append((r, query))
            else:  # ended, out of room, or a search past the allowed turns (the response ends there)
                r.done = True
        for (r, query), info in zip(asked, tool.respond([q for _, q in asked])):
            r.queries.append(query)
            info_ids = tokenizer(info, add_special_tokens=False)["input_ids"][:max_new_tokens - len(r.completion_ids)]
            r.completion_ids += info_ids
            r.env_mask += [0] * len(info_ids)


def make_rollout_func(tool: Any, tokenizer: Any, max_new_tokens: int, eos_ids: Sequence[int]) -> Any:
    """GRPOTrainer's `rollout_func(prompts, trainer)`: one sampled response per prompt it is given, with the tool
    (TRL's sampler has already repeated each prompt num_generations times, so a group is those repeats)."""

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from trl.models import unwrap_model_for_generation

        prompt_ids = [tokenizer(str(p), add_special_tokens=False)["input_ids"] for p in prompts]
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs
                                         ) as model:
            rollouts = run_with_tool(model, tokenizer, prompt_ids, tool, max_new_tokens, trainer.generation_config,
                                     eos_ids)
        searched = [r for r in rollouts if r.queries]
        log.info("search tool: %d of %d rollouts searched (%d calls)", len(searched), len(rollouts),
                 sum(len(r.queries) for r in rollouts))
        if searched:  # one example per step in the log: what was asked and what came back
            shown = searched[0]
            log.info("a rollout that searched: %s", tokenizer.decode(shown.completion_ids, skip_special_tokens=True))
        return {"prompt_ids": [r.prompt_ids for r in rollouts], "completion_ids": [r.completion_ids for r in rollouts],
                "logprobs": None, "env_mask": [r.env_mask for r in rollouts],
                "search_calls": [len(r.queries) for r in rollouts]}

    return rollout_func


def tool_greedy_complete(model: Any, tokenizer: Any, prompts: Sequence[str], tool: Any, max_new_tokens: int,
                         eos_ids: Sequence[int], batch_size: int = 64) -> list[str]:
    """Greedy responses with the tool (validation and test), the retrieved documents included in the text."""
    from transformers import GenerationConfig

    was_training = getattr(model, "training", False)
    model.eval()
    out: list[str] = []
    config = GenerationConfig(do_sample=False)
    try:
        for start in range(0, len(prompts), batch_size):
            ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start:start + batch_size]]
            rollouts = run_with_tool(model, tokenizer, ids, tool, max_new_tokens, config, eos_ids)
            out += [tokenizer.decode(r.completion_ids, skip_special_tokens=True) for r in rollouts]
        searched = [text for text in out if "<information>" in text]
        log.info("search tool: %d of %d greedy responses searched", len(searched), len(out))
        if searched:
            log.info("a greedy response that searched: %s", searched[0])
    finally:
        if was_training:
            model.train()
    return out

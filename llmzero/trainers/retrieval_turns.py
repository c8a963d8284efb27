"""Where a generated turn ends under the Search-R1 protocol (tasks/retrieval.SearchTool), for every backend's rollout
loop: trainer=trl's (trl/retrieval_rollouts.py) and trainer=verl's agent loop (verl/retrieval_loop.py) cut a generation
the same way, so a response searches at the same token under both.

An engine stopped on a stop string may hand back a few tokens past it (a batch row that went on, or a token that
merges `</search>` with what follows), so the cut is found by decoding, not trusted to the engine.
"""

from __future__ import annotations

from typing import Any, Collection

EOS, SEARCH, LENGTH = "eos", "search", "length"


def turn_end(tokenizer: Any, ids: list[int], eos: Collection[int], stop: str | None) -> tuple[list[int], str]:
    """The tokens of this turn up to its end, and why it ended: EOS (the eos token kept), SEARCH (the stop string
    completed) or LENGTH. Decoded token by token, so a row that stopped on the stop string is told from its padding."""
    if stop is None:  # only an eos ends the turn early: no decoding needed
        k = next((k for k, token in enumerate(ids) if token in eos), None)
        return (ids, LENGTH) if k is None else (ids[:k + 1], EOS)
    text = ""
    for k, token in enumerate(ids):
        if token in eos:
            return ids[:k + 1], EOS
        text += tokenizer.decode([token], skip_special_tokens=False)
        if text.rstrip().endswith(stop):
            return ids[:k + 1], SEARCH
    return ids, LENGTH

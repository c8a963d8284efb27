"""The search tool's rollout loop (llmzero/trainers/trl/retrieval_rollouts.py) on a real tiny model: generation pauses
at the stop string, the tool's text is appended with env_mask 0 (never trained on), generation resumes, and the
turn and token limits hold. The model's choice is steered with generate's own sequence_bias (every step writes
"a"), so where the pauses fall is known; the tool is a scripted stand-in for the retriever, named as one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from transformers import GenerationConfig

from llmzero.models.loading import eos_token_ids, load_model_and_tokenizer
from llmzero.models.tiny import build_tiny_model
from llmzero.tasks.arithmetic import ArithmeticTask
from llmzero.trainers.trl.retrieval_rollouts import run_with_tool


@dataclass
class ScriptedTool:
    """Stand-in for SearchTool: a call is every "aaa"; the answer is a fixed document."""
    max_turns: int = 1
    stop: str = "aaa"
    calls: int = 0

    def query(self, text):
        return "aaa" if text.endswith(self.stop) else None

    def respond(self, queries):
        self.calls += len(queries)
        return ["<information>doc</information>" for _ in queries]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"), ArithmeticTask(), sft_steps=0, progress=False)
    return load_model_and_tokenizer(str(path))


def test_the_tools_text_is_appended_masked_and_generation_resumes(tiny):
    model, tok = tiny
    a = tok.convert_tokens_to_ids("a")
    config = GenerationConfig(do_sample=False, sequence_bias={(a,): 100.0})  # every step writes "a"
    tool = ScriptedTool(max_turns=1)
    prompts = [tok("12+34=")["input_ids"], tok("7+8=")["input_ids"]]
    rollouts = run_with_tool(model, tok, prompts, tool, 40, config, eos_token_ids(model, tok))
    info = tok("<information>doc</information>", add_special_tokens=False)["input_ids"]
    for r, p in zip(rollouts, prompts):
        assert r.prompt_ids == p and r.queries == ["aaa"]
        # 3 model tokens up to the call, the document (mask 0), then the model again until 40 tokens in all
        assert r.completion_ids[:3] == [a, a, a] and r.completion_ids[3:3 + len(info)] == info
        assert r.env_mask == [1] * 3 + [0] * len(info) + [1] * (40 - 3 - len(info))
        assert len(r.completion_ids) == 40 and set(r.completion_ids[3 + len(info):]) == {a}
    assert tool.calls == 2  # one call each: past max_turns the stop string no longer pauses generation


def test_a_call_past_the_allowed_turns_ends_the_response_and_none_is_answered(tiny):
    model, tok = tiny
    a = tok.convert_tokens_to_ids("a")
    config = GenerationConfig(do_sample=False, sequence_bias={(a,): 100.0})
    tool = ScriptedTool(max_turns=0)
    [r] = run_with_tool(model, tok, [tok("1+1=")["input_ids"]], tool, 12, config, eos_token_ids(model, tok))
    assert tool.calls == 0 and r.queries == [] and r.env_mask == [1] * len(r.completion_ids) == [1] * 12

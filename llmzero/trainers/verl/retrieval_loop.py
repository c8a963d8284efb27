"""The Search-R1 protocol as a verl agent loop: PaperSearchQA's rollouts and validation with its search tool on verl.

verl 0.9's own tool agent reads tool calls through a chat-template tool parser and answers them as `tool` chat turns.
The paper's setting is Search-R1's plain-text protocol instead, as trainer=trl runs it (trl/retrieval_rollouts.py): the
model writes `<search> query </search>`, generation pauses there, and the documents come back inline as
`<information>…</information>` in the same response, which then goes on, at most max_turns searches per response.
So a phase with the tool selects this loop (`rollout.agent.default_agent_loop=llmzero_search`, registered through
`rollout.agent.agent_loop_config_path`; data.write_search_configs writes both files) and it calls the `search` tool
verl loaded from `rollout.multi_turn.tool_config_path` (retrieval_tool.RetrievalTool).

Per response: generate until eos, the response budget (data.max_response_length, documents included, as trainer=trl
counts it) or a closed search call (the engine's stop string, kept in the output: vLLM and TensorRT-LLM's
include_stop_str_in_output, SGLang's no_stop_trim; the cut itself is found by decoding, retrieval_turns.turn_end); answer
the query; repeat. The documents' tokens get response_mask 0, so the policy loss, KL and entropy never train on them
(the env_mask of trainer=trl). Searches per response: `rollout.multi_turn.max_user_turns`, which the phase sets from
task.retriever.max_turns.
"""

from __future__ import annotations

from typing import Any, Optional
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, ToolListWrap, register
from verl.utils.profiler import simple_timer

from ..retrieval_turns import SEARCH, turn_end
from .data import SEARCH_AGENT
from .retrieval_tool import TOOL_NAME

# what makes each engine keep the stop string in the tokens it returns (verl passes sampling params through)
KEEP_STOP = {"vllm": {"include_stop_str_in_output": True}, "trtllm": {"include_stop_str_in_output": True},
             "sglang": {"no_stop_trim": True}}


def stop_params(engine: str, stop: str) -> dict[str, Any]:
    """Sampling parameters that pause generation right after `stop`, for verl's rollout engine `engine`."""
    return {"stop": [stop], **KEEP_STOP.get(engine, {})}


@register(SEARCH_AGENT)
class SearchAgentLoop(AgentLoopBase):
    """verl agent loop `llmzero_search`: one response with the task's search tool, in the Search-R1 text protocol."""

    def __init__(self, *args: Any, tools: Optional[ToolListWrap] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = [t for t in (tools.tools if tools else []) if getattr(t, "name", None) == TOOL_NAME]
        if not found or getattr(found[0], "protocol", None) is None:
            raise ValueError(f"verl agent loop {SEARCH_AGENT!r} needs the tool {TOOL_NAME!r} "
                             "(llmzero.trainers.verl.retrieval_tool.RetrievalTool) in "
                             "actor_rollout_ref.rollout.multi_turn.tool_config_path")
        self.tool = found[0]
        self.protocol = self.tool.protocol
        turns = self.rollout_config.multi_turn.max_user_turns
        self.max_searches = int(self.protocol.max_turns if turns is None else turns)
        self.response_length = int(self.rollout_config.response_length)
        self.stop = stop_params(str(self.rollout_config.name), self.protocol.stop)
        eos = self.tokenizer.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        prompt_ids = await self.ct_build_initial_tokens(list(kwargs["raw_prompt"]))
        response: list[int] = []
        mask: list[int] = []
        logprobs: list[float] = []
        metrics: dict[str, Any] = {}
        searches = 0
        request_id = uuid4().hex  # one per response, as verl's tool agent does: its turns go to the same server
        instance_id, _ = await self.tool.create()
        try:
            while len(response) < self.response_length:
                room = self.response_length - len(response)
                searching = searches < self.max_searches
                params = {**sampling_params, "max_tokens": room, **(self.stop if searching else {})}
                with simple_timer("generate_sequences", metrics):
                    out = await self.server_manager.generate(request_id=request_id, prompt_ids=prompt_ids + response,
                                                             sampling_params=params)
                turn, why = turn_end(self.tokenizer, list(out.token_ids)[:room], self.eos,
                                     self.protocol.stop if searching else None)
                response += turn
                mask += [1] * len(turn)
                if out.log_probs:
                    logprobs += list(out.log_probs[:len(turn)])
                query = (self.protocol.query(self.tokenizer.decode(response, skip_special_tokens=True))
                         if why == SEARCH else None)
                if query is None:  # ended, out of room, or no query inside the closed call
                    break
                with simple_timer("tool_calls", metrics):
                    answer, _, _ = await self.tool.execute(instance_id, {"query": query})
                info = self.tokenizer(answer.text or "", add_special_tokens=False)["input_ids"]
                info = info[:self.response_length - len(response)]
                response += info
                mask += [0] * len(info)  # the tool wrote these: context for the model, never trained on
                logprobs += [0.0] * len(info) if logprobs else []
                searches += 1
        finally:
            await self.tool.release(instance_id)
        return AgentLoopOutput(
            prompt_ids=prompt_ids, response_ids=response, response_mask=mask,
            response_logprobs=logprobs[:len(response)] if logprobs else None,
            num_turns=2 + 2 * searches,  # the user's prompt, each search call and its answer, the final answer
            metrics=metrics,
            extra_fields={"turn_scores": [], "tool_rewards": [], "search_calls": searches},
        )

"""PaperSearchQA's search tool as a verl native tool (a `BaseTool`), loaded by verl from a tool config file.

verl's agent-loop workers read `actor_rollout_ref.rollout.multi_turn.tool_config_path` (data.write_search_configs
writes it) and build each tool listed there with `config` and `tool_schema`. Ours is named `search`, takes one
`query`, and answers with the task's own SearchTool (tasks/retrieval.py): the same retriever (task.retriever.url, or
the BM25 index of task.retriever.corpus built once per worker), topk and document truncation as trainer=trl uses, so
both backends give a rollout the same `<information>` text. The tool's config names the phase's phase_config.json,
from which the task is built (reward.task_of).

The Search-R1 text protocol around it (when to call, what goes back into the response) is the agent loop's
(retrieval_loop.py); the tool itself is what verl's tool interface expects, so it could serve verl's own tool agent too.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from ...tasks.base import task_tool
from .reward import task_of

TOOL_NAME = "search"

SCHEMA = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Search the task's document collection; returns the top documents for the query.",
        "parameters": {"type": "object",
                       "properties": {"query": {"type": "string", "description": "what to search for"}},
                       "required": ["query"]},
    },
}


class RetrievalTool(BaseTool):
    """verl tool `search` over the task's retriever. config: {"type": "native", "phase_config": <path>}."""

    def __init__(self, config: dict, tool_schema: Optional[OpenAIFunctionToolSchema] = None) -> None:
        super().__init__(config, tool_schema or OpenAIFunctionToolSchema.model_validate(SCHEMA))
        phase_config = config.get("phase_config")
        if not phase_config:
            raise ValueError(f"the verl tool {type(self).__name__} needs config.phase_config (the phase_config.json "
                             "its task is built from)")
        task = task_of(str(phase_config))
        self.protocol = task_tool(task)  # tasks.retrieval.SearchTool: query parsing, max_turns, the <information> text
        if self.protocol is None:
            raise ValueError(f"task {task.name!r} has no search tool (task.search_tool=false): nothing for the verl "
                             "tool to search")

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return OpenAIFunctionToolSchema.model_validate(SCHEMA)

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
                      ) -> tuple[ToolResponse, float, dict]:
        query = str((parameters or {}).get("query", "")).strip()
        # retrieval blocks (an HTTP call, or BM25 over the corpus): off the event loop the other rollouts run on
        text = (await asyncio.get_running_loop().run_in_executor(None, self.protocol.respond, [query]))[0]
        return ToolResponse(text=text), 0.0, {"query": query}

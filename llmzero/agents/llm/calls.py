"""Every LLM call saved under its node: the rendered prompt, images, raw reply, usage, cost.

One JSON file per call (`<node>/agent_calls/<seq>-<role>.json`), written atomically the
moment the call returns, so a crash never loses what was paid for. API keys are never part
of a request we build, and any string equal to a configured key is masked before writing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...atomic import write_json_atomic
from .client import ChatReply, ChatRequest


@dataclass
class CallRecord:
    role: str
    provider: str
    model: str
    attempt: int  # 0 = first ask, n = n-th re-ask after a rejected answer
    static_system: str
    system: str
    turns: list[dict[str, str]]
    images: list[str]
    response: str = ""
    verdict: str = ""  # accepted / rejected: <why> / provider error: <why>
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float | None = None  # None: no price known for this model
    latency_s: float = 0.0
    http_attempts: int = 0
    transient_errors: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    @classmethod
    def of(cls, role: str, provider: str, attempt: int, request: ChatRequest, images_sent: bool) -> "CallRecord":
        return cls(role=role, provider=provider, model=request.model, attempt=attempt,
                   static_system=request.static_system, system=request.system,
                   turns=[{"role": t.role, "text": t.text} for t in request.turns],
                   images=list(request.images) if images_sent else [])

    def with_reply(self, reply: ChatReply, usd: float | None) -> "CallRecord":
        self.response, self.model = reply.text, reply.model or self.model
        self.tokens_in, self.tokens_out = reply.tokens_in, reply.tokens_out
        self.cached_tokens, self.cache_write_tokens = reply.cached_tokens, reply.cache_write_tokens
        self.usd, self.latency_s = usd, reply.latency_s
        self.http_attempts, self.transient_errors = reply.attempts, list(reply.errors)
        return self


class CallLog:
    def __init__(self, node_dir: str | Path):
        self.dir = Path(node_dir) / "agent_calls"

    def _next_seq(self) -> int:
        existing = [p.name.split("-", 1)[0] for p in self.dir.glob("*.json")] if self.dir.is_dir() else []
        return max((int(s) for s in existing if s.isdigit()), default=0) + 1

    def save(self, record: CallRecord, secrets: tuple[str, ...] = ()) -> Path:
        path = self.dir / f"{self._next_seq():03d}-{record.role}.json"
        write_json_atomic(path, _mask(asdict(record), tuple(s for s in secrets if s)))
        return path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("*.json"))] if self.dir.is_dir() else []


def _mask(value: Any, secrets: tuple[str, ...]) -> Any:
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    return value

"""What an LLM provider backend must do: one chat request in, one reply with its usage out.

A client sends `ChatRequest` (a static system part that can be cached, a per-call system
part, the conversation so far, PNG images attached to the first user turn) and returns
`ChatReply`. Transient failures (rate limits, overload, 5xx, timeouts, unreachable
endpoint) are retried with exponential backoff and jitter, honouring the provider's
retry-after(-ms): by the provider's own SDK where it does this (the anthropic SDK: the client
says `retries_itself` and reports the attempts it made), else by `send_with_retries` here.
Either way the call log says how many attempts a reply took.
"""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ...config.schema import RetryConfig as RetryPolicy  # agent.retry: one schema, one set of defaults

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str


@dataclass
class ChatRequest:
    model: str
    static_system: str  # identical across calls of a search: descriptions, instructions, schema
    system: str  # per-call part of the system prompt (may be empty)
    turns: list[Turn]
    images: list[str] = field(default_factory=list)  # PNG paths, attached to the first user turn
    max_tokens: int = 2048
    temperature: float | None = None


@dataclass
class ChatReply:
    text: str
    tokens_in: int = 0  # uncached input tokens
    tokens_out: int = 0
    cached_tokens: int = 0  # input tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # input tokens written to it
    model: str = ""
    attempts: int = 1
    errors: list[str] = field(default_factory=list)  # transient failures before this reply
    latency_s: float = 0.0


class LLMClient(Protocol):
    provider: str
    vision: bool  # whether images are sent at all

    def send(self, request: ChatRequest) -> ChatReply:
        """One HTTP round trip; raises ProviderError (transient or not) on failure."""
        ...


class ProviderError(RuntimeError):
    def __init__(self, message: str, *, transient: bool, status: int | None = None, retry_after: float | None = None,
                 attempts: int = 1, errors: list[str] | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.attempts = attempts  # HTTP requests made before giving up, for the call record
        self.errors = list(errors or [])


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None,
                  jitter: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before retry `attempt` + 1: the provider's retry-after when it sent one, else
    exponential backoff with jitter (half to all of the step), so parallel searches do not retry in step."""
    if retry_after is not None:  # the provider knows its own rate window better than our schedule
        return min(policy.max_backoff_s, max(0.0, retry_after))
    step = min(policy.max_backoff_s, policy.backoff_s * (2 ** attempt))
    return jitter(step / 2, step)


def send_with_retries(client: LLMClient, request: ChatRequest, policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep) -> ChatReply:
    if getattr(client, "retries_itself", False):
        return client.send(request)
    errors: list[str] = []
    started = time.monotonic()
    for attempt in range(policy.max_retries + 1):
        try:
            reply = client.send(request)
        except ProviderError as exc:
            errors.append(str(exc))
            if not exc.transient or attempt == policy.max_retries:
                raise ProviderError(
                    f"{client.provider} call failed after {attempt + 1} attempt(s): {exc}",
                    transient=exc.transient, status=exc.status, attempts=attempt + 1, errors=errors) from exc
            sleep(backoff_delay(policy, attempt, exc.retry_after))
            continue
        reply.attempts = attempt + 1
        reply.errors = errors
        reply.latency_s = time.monotonic() - started
        return reply
    raise AssertionError("unreachable")


def classify_status(status: int | None) -> bool:
    """Transient: worth retrying. No status means the request never got an answer (network, timeout)."""
    return status is None or status in RETRYABLE_STATUS


def retry_after_header(headers: object) -> float | None:
    """Seconds from retry-after-ms (OpenAI-style, precise) or retry-after, when the provider sent either."""
    if headers is None:
        return None
    for key, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            value = headers.get(key)  # type: ignore[attr-defined]
            if value is not None:
                return float(value) * scale
        except (TypeError, ValueError):
            continue
    return None


def png_base64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")

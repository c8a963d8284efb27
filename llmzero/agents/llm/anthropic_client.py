"""Claude through the official anthropic SDK (Messages API).

The static part of the system prompt (metric and hyperparameter descriptions, instructions,
answer schema) is marked for prompt caching: it is the same on every call of a search, so
after the first call it is billed at the cache-read rate. Transient errors are retried by the
SDK itself (backoff with jitter, retry-after and retry-after-ms honoured); hooks on its HTTP
client count the attempts and note each failed one for the call log.
"""

from __future__ import annotations

import time
from typing import Any

from .client import ChatReply, ChatRequest, ProviderError, classify_status, png_base64


class AnthropicClient:
    provider = "anthropic"
    retries_itself = True

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout_s: float = 300.0,
                 vision: bool = True, cache_static: bool = True, max_retries: int = 4):
        import anthropic  # deferred: only searches with agent=claude need the SDK

        self._errors = anthropic
        self._attempts = 0
        self._failures: list[str] = []
        http = anthropic.DefaultHttpxClient(event_hooks={"request": [self._on_request],
                                                         "response": [self._on_response]})
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s,
                                           max_retries=max_retries, http_client=http)
        self.vision = vision
        self.cache_static = cache_static

    def _on_request(self, request: Any) -> None:
        self._attempts += 1

    def _on_response(self, response: Any) -> None:
        if response.status_code >= 400:
            self._failures.append(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())

    def _system(self, request: ChatRequest) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": request.static_system}]
        if self.cache_static:
            blocks[0]["cache_control"] = {"type": "ephemeral"}
        if request.system:
            blocks.append({"type": "text", "text": request.system})
        return blocks

    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        out = []
        for i, turn in enumerate(request.turns):
            content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}]
            if i == 0 and self.vision:
                for path in request.images:
                    content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                "data": png_base64(path)}})
            out.append({"role": turn.role, "content": content})
        return out

    def send(self, request: ChatRequest) -> ChatReply:
        kwargs: dict[str, Any] = dict(model=request.model, max_tokens=request.max_tokens,
                                      system=self._system(request), messages=self._messages(request))
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        err = self._errors
        self._attempts, self._failures = 0, []
        started = time.monotonic()
        try:
            msg = self._client.messages.create(**kwargs)
        except err.APIStatusError as exc:
            raise ProviderError(f"{self._after()}HTTP {exc.status_code}: {_message(exc)}",
                                transient=classify_status(exc.status_code), status=exc.status_code,
                                attempts=max(1, self._attempts), errors=self._failures_seen(final=False)) from exc
        except err.APIConnectionError as exc:  # includes timeouts
            raise ProviderError(f"{self._after()}cannot reach the Anthropic API: {exc}", transient=True,
                                attempts=max(1, self._attempts), errors=self._failures_seen(final=False)) from exc
        text = "".join(getattr(block, "text", "") for block in msg.content)
        usage = msg.usage
        return ChatReply(
            text=text, tokens_in=int(usage.input_tokens or 0), tokens_out=int(usage.output_tokens or 0),
            cached_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0), model=msg.model,
            attempts=max(1, self._attempts), errors=self._failures_seen(), latency_s=time.monotonic() - started,
        )

    def _failures_seen(self, final: bool = True) -> list[str]:
        # An attempt that got no response at all (connection refused, timeout) reached no response hook; after a
        # success the last attempt is the good one, after a failure every attempt failed.
        silent = max(0, self._attempts - (1 if final else 0) - len(self._failures))
        return self._failures + ["no response (connection error or timeout)"] * silent

    def _after(self) -> str:
        return f"{self.provider} call failed after {max(1, self._attempts)} attempt(s): "


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return f"{inner.get('type', 'error')}: {inner['message']}"
    return str(exc)

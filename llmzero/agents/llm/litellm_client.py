"""Any provider litellm speaks (OpenAI, Anthropic, Gemini, Bedrock, Ollama, vLLM, ...).

The model string picks the provider (`openai/gpt-5`, `ollama/qwen3:8b`); `api_base` points
at a self-hosted endpoint. Images are sent only to models that accept them: with
vision=None the answer comes from litellm's model table, and an unknown model gets the
text summaries alone.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .client import ChatReply, ChatRequest, ProviderError, classify_status, png_base64, retry_after_header


def import_litellm() -> Any:
    # Offline first: without this litellm downloads its price table from GitHub on import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():  # litellm's own pydantic models warn on import; nothing a user can act on
        warnings.filterwarnings("ignore", message=r"Items? .* (is|are) using the `ReadOnly` qualifier")
        import litellm

    litellm.suppress_debug_info = True
    return litellm


class LiteLLMClient:
    provider = "litellm"

    def __init__(self, *, model: str, api_key: str | None = None, api_base: str | None = None,
                 timeout_s: float = 300.0, vision: bool | None = None, extra: dict[str, Any] | None = None):
        self._litellm = import_litellm()
        self.api_key = api_key
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.extra = dict(extra or {})
        if vision is None:
            try:
                vision = bool(self._litellm.supports_vision(model=model))
            except Exception:  # unknown model string: litellm cannot tell, so send text only
                vision = False
        self.vision = vision

    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        system = request.static_system + ("\n\n" + request.system if request.system else "")
        out: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for i, turn in enumerate(request.turns):
            if i == 0 and self.vision and request.images:
                parts: list[dict[str, Any]] = [{"type": "text", "text": turn.text}]
                parts += [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + png_base64(p)}}
                          for p in request.images]
                out.append({"role": turn.role, "content": parts})
            else:
                out.append({"role": turn.role, "content": turn.text})
        return out

    def send(self, request: ChatRequest) -> ChatReply:
        lit = self._litellm
        kwargs: dict[str, Any] = dict(model=request.model, messages=self._messages(request),
                                      max_tokens=request.max_tokens, timeout=self.timeout_s,
                                      num_retries=0, max_retries=0, **self.extra)
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        try:
            resp = lit.completion(**kwargs)
        except lit.exceptions.APIConnectionError as exc:
            raise ProviderError(f"cannot reach {request.model}: {_short(exc)}", transient=True) from exc
        except lit.exceptions.Timeout as exc:
            raise ProviderError(f"{request.model} timed out: {_short(exc)}", transient=True, status=408) from exc
        except Exception as exc:  # litellm maps provider errors to openai-style exceptions with status_code
            status = getattr(exc, "status_code", None)
            if status is None and not isinstance(exc, lit.exceptions.APIError):
                raise
            response = getattr(exc, "response", None)
            raise ProviderError(f"HTTP {status}: {_short(exc)}", transient=classify_status(status), status=status,
                                retry_after=retry_after_header(getattr(response, "headers", None))) from exc
        usage = getattr(resp, "usage", None)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        return ChatReply(
            text=resp.choices[0].message.content or "", tokens_in=max(0, prompt - cached),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0), cached_tokens=cached,
            model=getattr(resp, "model", request.model) or request.model,
        )

    def cost_usd(self, model: str, reply: ChatReply) -> float | None:
        """litellm's own price table, for models the config gives no price for; cached prompt tokens at the
        provider's cache-read rate (prompt_tokens counts them too, as providers report it)."""
        try:
            inp, out = self._litellm.cost_per_token(
                model=model, prompt_tokens=reply.tokens_in + reply.cached_tokens + reply.cache_write_tokens,
                completion_tokens=reply.tokens_out, cache_read_input_tokens=reply.cached_tokens,
                cache_creation_input_tokens=reply.cache_write_tokens)
            return float(inp + out)
        except Exception:
            return None


def _short(exc: BaseException, n: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."

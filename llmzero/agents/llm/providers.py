"""The two configured LLM agents: `agent=claude` (anthropic SDK) and `agent=litellm` (any provider).

Both are LLMAgent with a different client; everything else (prompts, re-asks, fallback,
call log, cost) is shared. A user plugs in another provider by pointing agent._target_ at
a class that builds its own LLMClient the same way.
"""

from __future__ import annotations

from typing import Any, Mapping

from .agent import AgentConfigError, LLMAgent, api_key_from_env
from .client import RetryPolicy


def _common(kwargs: dict[str, Any]) -> dict[str, Any]:
    retry = kwargs.pop("retry", None) or {}
    kwargs["retry"] = RetryPolicy(**retry) if isinstance(retry, Mapping) else retry
    if kwargs["retry"].max_retries < 0:
        raise AgentConfigError(f"agent.retry.max_retries={kwargs['retry'].max_retries} is not valid: expected an int ≥ 0")
    return kwargs


class ClaudeAgent(LLMAgent):
    def __init__(self, *, name: str = "claude", model: str = "claude-sonnet-4-6",
                 api_key_env: str = "ANTHROPIC_API_KEY", base_url: str | None = None, timeout_s: float = 300.0,
                 vision: bool = True, cache_static: bool = True, **kwargs: Any):
        from .anthropic_client import AnthropicClient

        key = api_key_from_env(api_key_env, name, required=True)
        kwargs = _common(kwargs)
        client = AnthropicClient(api_key=key, base_url=base_url, timeout_s=timeout_s, vision=vision,
                                 cache_static=cache_static, max_retries=kwargs["retry"].max_retries)
        super().__init__(client, name=name, model=model, secrets=(key,), **kwargs)


class LiteLLMAgent(LLMAgent):
    def __init__(self, *, name: str = "litellm", model: str = "openai/gpt-5", api_key_env: str | None = None,
                 api_base: str | None = None, timeout_s: float = 300.0, vision: bool | None = None,
                 extra: Mapping[str, Any] | None = None, **kwargs: Any):
        from .litellm_client import LiteLLMClient

        # A self-hosted endpoint (ollama, vLLM) may need no key; litellm also reads the provider's
        # usual variable (OPENAI_API_KEY, ...) itself when api_key_env is not set.
        key = api_key_from_env(api_key_env, name, required=bool(api_key_env))
        if not key:
            _check_provider_env(model, api_base, name)
        client = LiteLLMClient(model=model, api_key=key, api_base=api_base, timeout_s=timeout_s, vision=vision,
                               extra=dict(extra or {}))
        super().__init__(client, name=name, model=model, secrets=(key,) if key else (), **_common(kwargs))


def _check_provider_env(model: str, api_base: str | None, agent: str) -> None:
    """Without agent.api_key_env, litellm reads the provider's own variables; say up front which are
    missing instead of letting every call of the search fail and fall back."""
    from .litellm_client import import_litellm

    try:
        missing = import_litellm().validate_environment(model=model, api_base=api_base).get("missing_keys", [])
    except Exception:  # a model litellm cannot place: let the first call report it
        return
    missing = [k for k in missing if not (api_base and k.endswith("_API_BASE"))]
    if missing:
        raise AgentConfigError(
            f"agent={agent} agent.model={model}: litellm needs {', '.join(missing)} in the environment and it is not "
            f"set. Export it, or name the variable holding the key with agent.api_key_env=<VAR>.")

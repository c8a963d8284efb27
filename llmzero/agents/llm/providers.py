"""The two configured LLM agents: `agent=claude` (anthropic SDK) and `agent=litellm` (any provider).

Both are LLMAgent with a different client; everything else (prompts, re-asks, fallback,
call log, cost) is shared. A user plugs in another provider by pointing agent._target_ at
a class that builds its own LLMClient the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

from ...config.schema import ClaudeAgentConfig, LiteLLMAgentConfig
from .agent import AgentConfigError, LLMAgent, api_key_from_env
from .client import RetryPolicy

O = TypeVar("O")


def agent_options(schema: type[O], options: Mapping[str, Any]) -> O:
    """The agent's options as its schema dataclass: the defaults are the schema's, written once there."""
    options = dict(options)
    retry = options.pop("retry", None)
    try:
        opts = schema(**options)
    except TypeError as exc:
        known = sorted(f.name for f in dataclasses.fields(schema))
        raise AgentConfigError(f"agent options {sorted(options)} do not fit {schema.__name__} ({exc}); known: {known}") from None
    if retry is not None:
        opts.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy(**retry)
    if opts.retry.max_retries < 0:
        raise AgentConfigError(f"agent.retry.max_retries={opts.retry.max_retries} is not valid: expected an int ≥ 0")
    return opts


class ClaudeAgent(LLMAgent):
    def __init__(self, **options: Any):
        from .anthropic_client import AnthropicClient

        opts = agent_options(ClaudeAgentConfig, options)
        key = api_key_from_env(opts.api_key_env, opts.name, required=True)
        client = AnthropicClient(api_key=key, base_url=opts.base_url, timeout_s=opts.timeout_s, vision=opts.vision,
                                 cache_static=opts.cache_static, max_retries=opts.retry.max_retries)
        super().__init__(client, opts, secrets=(key,))


class LiteLLMAgent(LLMAgent):
    def __init__(self, **options: Any):
        from .litellm_client import LiteLLMClient

        opts = agent_options(LiteLLMAgentConfig, options)
        # A self-hosted endpoint (ollama, vLLM) may need no key; litellm also reads the provider's
        # usual variable (OPENAI_API_KEY, ...) itself when api_key_env is not set.
        key = api_key_from_env(opts.api_key_env, opts.name, required=bool(opts.api_key_env))
        if not key:
            _check_provider_env(opts.model, opts.api_base, opts.name)
        client = LiteLLMClient(model=opts.model, api_key=key, api_base=opts.api_base, timeout_s=opts.timeout_s,
                               vision=opts.vision, extra=dict(opts.extra or {}))
        super().__init__(client, opts, secrets=(key,) if key else ())


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

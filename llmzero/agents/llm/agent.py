"""An LLM behind the three agent roles: proposer (§3.4), early stopper (§3.5), error analyzer (D.1).

The agent owns the conversation with the model: it renders the role's prompt, sends it,
parses the JSON answer and runs the search's own validation on it. A reply that fails
either is sent back with the reason (at most `max_reasks` times); after that, or when the
provider keeps failing, AgentGaveUp hands the decision to the fallback agent, carrying
the cost of the failed attempts. With on_failure="error" a provider failure stops the
search instead (the tree is saved and the search can be resumed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...config.schema import LLMAgentConfig
from ...hparams.space import HParamError
from ...tree import Cost
from ..base import (AgentBase, AgentGaveUp, AgentUnavailable, ErrorContext, ErrorFix, Proposal, ProposalContext,
                    StopContext, StopDecision)
from .answers import AnswerError, parse_answer, to_fix, to_proposal, to_stop
from .calls import CallLog, CallRecord
from .client import ChatReply, ChatRequest, LLMClient, ProviderError, Turn, send_with_retries
from .prompts import PromptBook, RenderedPrompt


class AgentConfigError(ValueError):
    """Bad agent settings or a missing API key; the message names the setting and what is allowed."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None  # None: billed as input
    cache_write: float | None = None

    def usd(self, reply: ChatReply) -> float:
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return (reply.tokens_in * self.input + reply.tokens_out * self.output
                + reply.cached_tokens * read + reply.cache_write_tokens * write) / 1e6


def api_key_from_env(env_name: str | None, agent: str, required: bool) -> str | None:
    """Keys come from the environment only, so they never enter a config file, tree.json or W&B."""
    if not env_name:
        if required:
            raise AgentConfigError(f"agent={agent}: agent.api_key_env is empty; name the environment variable "
                                   f"that holds the API key")
        return None
    key = os.environ.get(env_name)
    if not key and required:
        raise AgentConfigError(
            f"agent={agent} needs an API key in the environment variable {env_name} (agent.api_key_env={env_name}), "
            f"and it is not set. Export it, point agent.api_key_env at another variable, or use agent=heuristic.")
    return key or None


class LLMAgent(AgentBase):
    """The three roles over any LLMClient; its options are the agent config (llmzero/config/schema.py)."""

    def __init__(self, client: LLMClient, opts: LLMAgentConfig, secrets: tuple[str, ...] = ()):
        # opts checked its own values when it was built (LLMAgentConfig.__post_init__)
        self.client = client
        self.name = opts.name
        self.model = opts.model
        self.role_models = {r: m for r, m in (opts.role_models or {}).items() if m}
        self.max_reasks = int(opts.max_reasks)
        self.max_tokens = int(opts.max_tokens)
        self.temperature = opts.temperature
        self.retry = opts.retry
        self.on_failure = opts.on_failure
        self.prices = {m: Price(**p) for m, p in (opts.prices or {}).items()}
        self.prompts = PromptBook(opts.prompts_dir)
        self.max_images = int(opts.max_images) if opts.images else 0
        self.secrets = tuple(secrets)

    @property
    def wants_images(self) -> bool:
        return bool(self.client.vision) and self.max_images > 0

    def model_for(self, role: str) -> str:
        return self.role_models.get(role, self.model)

    # ---- roles ---------------------------------------------------------------------------------
    def propose(self, ctx: ProposalContext) -> Proposal:
        if ctx.parent is None:
            return Proposal(changes={}, diagnosis="default configuration θ0", rationale="root phase", agent=self.name)
        prompt = self.prompts.proposer(ctx, self._images(ctx.plots))

        def accept(text: str) -> Proposal:
            proposal = to_proposal(parse_answer("proposer", text), self.name)
            if ctx.validate is not None:
                ctx.validate(proposal)
            return proposal

        return self._converse(prompt, accept, ctx.record_dir)

    def should_stop(self, ctx: StopContext) -> StopDecision:
        prompt = self.prompts.stopper(ctx, self._images(ctx.plots))
        return self._converse(prompt, lambda text: to_stop(parse_answer("stopper", text)), ctx.record_dir)

    def analyze_error(self, ctx: ErrorContext) -> ErrorFix:
        prompt = self.prompts.analyzer(ctx)

        def accept(text: str) -> ErrorFix:
            fix = to_fix(parse_answer("analyzer", text), self.name)
            if fix.fixable and ctx.validate is not None:
                ctx.validate(fix)
            return fix

        return self._converse(prompt, accept, ctx.record_dir)

    # ---- conversation --------------------------------------------------------------------------
    def _images(self, paths: list[str]) -> list[str]:
        return list(paths[: self.max_images]) if self.wants_images else []

    def price(self, model: str, reply: ChatReply) -> float | None:
        for name in (model, reply.model):
            if name in self.prices:
                return self.prices[name].usd(reply)
        estimate = getattr(self.client, "cost_usd", None)
        return estimate(model, reply) if estimate else None

    def _converse(self, prompt: RenderedPrompt, accept: Callable[[str], Any], record_dir: Path | None,
                  history: list[Turn] | None = None, retry: Callable[[str], str] | None = None,
                  reasks: int | None = None) -> Any:
        """One exchange, re-asked until `accept` takes the reply (`retry` words the re-ask, else the role's
        template; `reasks` in place of agent.max_reasks). With `history` the model sees every earlier turn of it,
        and the exchange (its re-asks included) is appended to it: a conversation that keeps its context."""
        calls = CallLog(record_dir) if record_dir is not None else None
        role, model = prompt.role, self.model_for(prompt.role)
        turns = [*(history or []), Turn("user", prompt.user)]
        cost, last_error = Cost(), ""
        reasks = self.max_reasks if reasks is None else reasks
        for attempt in range(reasks + 1):
            request = ChatRequest(model=model, static_system=prompt.static_system, system=prompt.system,
                                  turns=list(turns), images=prompt.images, max_tokens=self.max_tokens,
                                  temperature=self.temperature)
            record = CallRecord.of(role, self.client.provider, attempt, request, self.client.vision)
            try:
                reply = send_with_retries(self.client, request, self.retry)
            except ProviderError as exc:
                record.verdict = f"provider error: {exc}"
                record.http_attempts, record.transient_errors = exc.attempts, exc.errors
                self._save(calls, record)
                # A rejected key will not fix itself: stop with the reason rather than fall back all search long.
                if self.on_failure == "error" or exc.status in (401, 403):
                    raise AgentUnavailable(f"agent {self.name} ({model}): {exc}") from exc
                raise AgentGaveUp(f"{self.name} {role}: {exc}", cost) from exc
            usd = self.price(model, reply)
            record.with_reply(reply, usd)
            cost = cost.add(Cost(agent_tokens_in=reply.tokens_in + reply.cached_tokens + reply.cache_write_tokens,
                                 agent_tokens_out=reply.tokens_out, agent_usd=usd or 0.0, agent_calls=1,
                                 agent_cached_tokens=reply.cached_tokens))
            try:
                answer = accept(reply.text)
            except (AnswerError, HParamError) as exc:  # ProposalError is an HParamError
                last_error = str(exc)
                record.verdict = f"rejected: {last_error}"
                self._save(calls, record)
                again = retry(last_error) if retry is not None else self.prompts.retry(role, last_error)
                turns += [Turn("assistant", reply.text), Turn("user", again)]
                continue
            record.verdict = "accepted"
            self._save(calls, record)
            if history is not None:
                history[:] = [*turns, Turn("assistant", reply.text)]
            answer.cost = cost
            return answer
        raise AgentGaveUp(f"{self.name} gave no valid {role} answer in {reasks + 1} attempt(s); "
                          f"last problem: {last_error}", cost)

    def _save(self, calls: CallLog | None, record: CallRecord) -> None:
        if calls is not None:
            calls.save(record, self.secrets)

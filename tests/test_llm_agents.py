"""LLM agents with the real anthropic and litellm clients against the fake server on 127.0.0.1.

The server (tests/llm_server.py) is a fake of the Anthropic Messages and OpenAI chat-completions
APIs, needed because tests have no network; everything on our side of the socket is real.
"""

import json
import math

import pytest
import yaml

from llm_server import Reply, ScriptedLLMServer
from llmzero.agents.base import AgentGaveUp, AgentUnavailable, ErrorContext, ProposalContext, StopContext
from llmzero.agents.llm.agent import AgentConfigError
from llmzero.agents.llm.calls import CallLog
from llmzero.agents.llm.providers import ClaudeAgent, LiteLLMAgent
from llmzero.agents.validation import PlanRules, validate_proposal
from llmzero.hparams.space import HParamSpace
from llmzero.metrics.stop_evidence import gather
from llmzero.metrics.store import MetricSeries
from llmzero.paths import conf_dir
from llmzero.metrics.plots import plot_node_metrics, plot_overlay
from llmzero.tree import Node, NodeStatus

KEY = "sk-test-secret-0123456789"
FAST = {"max_retries": 3, "backoff_s": 0.0}


@pytest.fixture
def server():
    with ScriptedLLMServer() as s:
        yield s


@pytest.fixture
def space():
    raw = yaml.safe_load((conf_dir() / "search" / "default.yaml").read_text())["space"]
    return HParamSpace.from_config(raw)


def records(n=30, kl_spike_at=None):
    out = []
    for s in range(1, n + 1):
        r = {"step": s, "global_step": s, "reward/mean": 0.2 + 0.01 * s, "kl": 0.01 * s, "entropy": 1.0 - 0.01 * s,
             "grad_norm": 0.5, "clip_ratio": 0.01, "lr": 1e-5}
        if kl_spike_at and s >= kl_spike_at:
            r["kl"] = 3.0
        if s % 5 == 0:
            r["val/score"] = 0.3 + 0.005 * s
            r["test/score"] = 0.25 + 0.005 * s  # logged for the report; must never reach an agent
        out.append(r)
    return out


def parent_node(space):
    hp = space.defaults()
    return Node(id=0, parent=None, kind="root", hparams=hp, status=NodeStatus.COMPLETED, max_steps=30, steps_done=30,
                best_val=0.45, best_step=30, checkpoints=[10, 20, 30])


def proposal_ctx(space, tmp_path, *, scratch=False, node_id=1):
    parent = parent_node(space)
    metrics = MetricSeries(records())
    png = plot_node_metrics(metrics, tmp_path / "node0" / "metrics.png", title="node 0")
    rules = PlanRules(space=space, steps_per_epoch=lambda hp: 30, max_steps_cap=200, trainer_check=lambda hp: [])
    ckpts = [] if scratch else list(parent.checkpoints)

    def check(p):
        return validate_proposal(p, parent_hparams=parent.hparams, parent_checkpoints=ckpts, scratch=scratch, rules=rules)

    return ProposalContext(
        parent=parent, parent_metrics=metrics, parent_checkpoints=ckpts, path=[parent], best_val=0.45, space=space,
        scratch=scratch, steps_per_epoch=30, default_max_steps=30, max_steps_cap=200, budget_left=5, plots=[str(png)],
        node_id=node_id, validate=check, record_dir=tmp_path / f"node{node_id}")


def answer(**over):
    body = {"diagnosis": "val/score rises steadily; kl grows slowly; no instability.",
            "observations": [{"metric": "val/score", "claim": "rises", "start_step": 5, "end_step": 30},
                             {"metric": "kl", "claim": "falls", "start_step": 1, "end_step": 30}],
            "changes": {"learning_rate": 2e-5, "kl_coef": 0.002}, "rationale": "more signal, tighter leash",
            "resume_step": 30, "epochs": 1.5, "max_steps": None}
    body.update(over)
    return json.dumps(body)


def claude(server, monkeypatch, **kw):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    prices = {"claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}}
    return ClaudeAgent(base_url=server.anthropic_base_url, retry=FAST, prices=prices, **kw)


def litellm_agent(server, monkeypatch, **kw):
    kw.setdefault("vision", True)
    monkeypatch.setenv("LLMZERO_TEST_OPENAI_KEY", KEY)
    return LiteLLMAgent(model="openai/test-model", api_base=server.openai_base_url, retry=FAST,
                        api_key_env="LLMZERO_TEST_OPENAI_KEY",
                        prices={"openai/test-model": {"input": 1.0, "output": 2.0}}, **kw)


def saved_calls(ctx):
    return CallLog(ctx.record_dir).records()


# ---- proposer ------------------------------------------------------------------------------------
def test_claude_proposer_sends_system_summaries_and_plot_and_reaches_a_proposal(server, space, tmp_path, monkeypatch):
    server.push(f"Here is my plan:\n```json\n{answer()}\n```")
    ctx = proposal_ctx(space, tmp_path)
    p = claude(server, monkeypatch).propose(ctx)

    assert p.changes == {"learning_rate": 2e-5, "kl_coef": 0.002, "epochs": 1.5} and p.resume_step == 30
    assert ctx.validate(p).max_steps == 45  # 1.5 epochs x 30 steps per epoch
    assert p.cost.agent_calls == 1 and p.cost.agent_tokens_in > 1000 and p.cost.agent_usd > 0
    (req,) = server.requests
    assert req.api == "anthropic" and req.body["model"] == "claude-sonnet-4-6"
    system = req.system_text()
    assert "four stages" in system and "Not related to response length" in system  # Appendix F text
    assert "learning_rate: a float in [1e-07, 0.01]" in system and '"resume_step"' in system  # space + schema
    assert req.system_blocks()[0].get("cache_control") == {"type": "ephemeral"}
    user = req.user_text()
    assert "val/score: steps 5-30" in user and "kl: steps 1-30" in user  # summaries, not raw dumps
    assert '"step": 7' not in user and "Parent checkpoints: steps [10, 20, 30]" in user
    assert "test/score" not in user and "test/score" not in system
    assert len(req.images()) == 1 and req.api_key() == KEY

    (call,) = saved_calls(ctx)
    assert call["verdict"] == "accepted" and call["images"] == ctx.plots
    assert call["tokens_in"] + call["cache_write_tokens"] > 1000 and call["tokens_out"] > 0 and call["usd"] > 0
    assert "four stages" in call["static_system"] and call["response"].startswith("Here is my plan")
    assert KEY not in json.dumps(call)


def test_the_prompts_prescribe_no_direction_for_any_kind_of_parameter(server, space, tmp_path, monkeypatch):
    # Appendix G: the prompts hard-code no strategy; §4.3.2's capacity/regularisation asymmetry is a finding the
    # agent may or may not rediscover, so neither the rules nor the parameters' roles are in what it reads.
    server.push(answer())
    claude(server, monkeypatch).propose(proposal_ctx(space, tmp_path))
    text = server.requests[0].system_text() + server.requests[0].user_text()
    assert "lora_rank" in text and "response_length" in text
    for phrase in ("should not go down", "should not decrease", "capacity parameter", "[capacity", "[regularisation",
                   "accumulate", "oscillate"):
        assert phrase not in text.lower(), phrase


def test_static_prompt_is_cached_on_the_second_call(server, space, tmp_path, monkeypatch):
    agent = claude(server, monkeypatch)
    server.push(answer(), answer())
    first = agent.propose(proposal_ctx(space, tmp_path, node_id=1))
    second = agent.propose(proposal_ctx(space, tmp_path, node_id=2))
    assert first.cost.agent_cached_tokens == 0 and second.cost.agent_cached_tokens > 1000
    assert second.cost.agent_usd < first.cost.agent_usd  # cache reads are billed at a tenth


@pytest.mark.parametrize("bad, expected", [
    ("I think we should raise the learning rate {not json", "not valid JSON"),
    (answer(changes={"learning_rate": 5.0}), "learning_rate=5.0 is not valid: expected a float in [1e-07, 0.01]"),
    (answer(changes={"lora_rank": 16}), "lora_rank=16 changes a parameter fixed along a strategy path"),
    (answer(changes={"warmup": 3}), "changes.warmup=3 is not a known hyperparameter"),
    (answer(resume_step=25), "resume_step=25 is not a checkpoint of the parent; available steps: [10, 20, 30]"),
    (json.dumps({"diagnosis": "x", "changes": {}, "rationale": "y"}), "resume_step: Field required"),
    (answer(confidence=0.9), "confidence: Extra inputs are not permitted"),
])
def test_invalid_answer_is_reasked_with_the_reason(server, space, tmp_path, monkeypatch, bad, expected):
    server.push(bad, answer())
    ctx = proposal_ctx(space, tmp_path)
    p = claude(server, monkeypatch).propose(ctx)
    assert p.changes["learning_rate"] == 2e-5 and p.cost.agent_calls == 2
    retry = server.requests[1]
    msgs = retry.messages()
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"][0]["text"] == bad and expected in msgs[2]["content"][0]["text"]
    first, second = saved_calls(ctx)
    assert first["verdict"].startswith("rejected:") and expected in first["verdict"] and second["verdict"] == "accepted"


def test_agent_gives_up_after_bounded_reasks_with_the_cost_of_the_attempts(server, space, tmp_path, monkeypatch):
    server.push(*[answer(changes={"learning_rate": 9.0})] * 3)
    ctx = proposal_ctx(space, tmp_path)
    with pytest.raises(AgentGaveUp, match="no valid proposer answer in 3 attempt") as err:
        claude(server, monkeypatch, max_reasks=2).propose(ctx)
    assert len(server.requests) == 3 and err.value.cost.agent_calls == 3 and err.value.cost.agent_usd > 0
    assert [c["attempt"] for c in saved_calls(ctx)] == [0, 1, 2]


@pytest.mark.parametrize("status", [529, 429, 503])
def test_transient_errors_are_retried_then_succeed(server, space, tmp_path, monkeypatch, status):
    server.push(Reply(status=status, text="busy", headers={"retry-after": "0"}), answer())
    ctx = proposal_ctx(space, tmp_path)
    p = claude(server, monkeypatch).propose(ctx)
    assert p.resume_step == 30 and len(server.requests) == 2
    (call,) = saved_calls(ctx)
    assert call["http_attempts"] == 2 and f"HTTP {status}" in call["transient_errors"][0]


def test_provider_down_gives_up_or_stops_the_search_as_configured(server, space, tmp_path, monkeypatch):
    server.push(*[Reply(status=529, text="overloaded", headers={"retry-after": "0"})] * 8)
    ctx = proposal_ctx(space, tmp_path)
    with pytest.raises(AgentGaveUp, match="failed after 4 attempt"):
        claude(server, monkeypatch).propose(ctx)
    with pytest.raises(AgentUnavailable, match="HTTP 529"):
        claude(server, monkeypatch, on_failure="error").propose(proposal_ctx(space, tmp_path, node_id=2))
    assert len(server.requests) == 8  # 1 + max_retries each, never more
    (call,) = saved_calls(ctx)
    assert call["verdict"].startswith("provider error")
    assert call["http_attempts"] == 4 and len(call["transient_errors"]) == 4, call  # every attempt, recorded
    assert all(e.startswith("HTTP 529") for e in call["transient_errors"]), call


def test_bad_request_is_not_retried(server, space, tmp_path, monkeypatch):
    server.push(Reply(status=400, text="prompt is too long"))
    with pytest.raises(AgentGaveUp, match="HTTP 400.*prompt is too long"):
        claude(server, monkeypatch).propose(proposal_ctx(space, tmp_path))
    assert len(server.requests) == 1


def test_unreachable_endpoint_is_a_transient_failure(space, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    agent = ClaudeAgent(base_url="http://127.0.0.1:9", retry={"max_retries": 1, "backoff_s": 0.0}, timeout_s=5)
    with pytest.raises(AgentGaveUp, match="cannot reach the Anthropic API"):
        agent.propose(proposal_ctx(space, tmp_path))


def test_missing_api_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(AgentConfigError, match="environment variable ANTHROPIC_API_KEY"):
        ClaudeAgent()
    with pytest.raises(ValueError, match="agent.on_failure='retry' is not valid"):
        LiteLLMAgent(model="ollama/qwen3:8b", api_base="http://127.0.0.1:11434", on_failure="retry")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(AgentConfigError, match="litellm needs OPENAI_API_KEY"):
        LiteLLMAgent(model="openai/gpt-5")
    LiteLLMAgent(model="ollama/qwen3:8b", api_base="http://127.0.0.1:11434")  # a local server needs no key


def test_rejected_key_stops_instead_of_falling_back(server, space, tmp_path, monkeypatch):
    server.push(Reply(status=401, text="invalid x-api-key"))
    with pytest.raises(AgentUnavailable, match="HTTP 401"):
        claude(server, monkeypatch).propose(proposal_ctx(space, tmp_path))
    assert len(server.requests) == 1


def test_scratch_child_gets_no_checkpoint_information(server, space, tmp_path, monkeypatch):
    server.push(answer(resume_step=None, changes={"lora_rank": 16, "learning_rate": 3e-5}))
    ctx = proposal_ctx(space, tmp_path, scratch=True)
    p = claude(server, monkeypatch).propose(ctx)
    user = server.requests[0].user_text()
    assert "resume_step must be null" in user and "Parent checkpoints" not in user and "[10, 20, 30]" not in user
    assert p.resume_step is None and p.changes["lora_rank"] == 16


# ---- litellm ---------------------------------------------------------------------------------------
def test_litellm_sends_openai_chat_with_images_and_retries_429(server, space, tmp_path, monkeypatch):
    server.push(Reply(status=429, text="slow down", headers={"retry-after": "0"}), answer())
    ctx = proposal_ctx(space, tmp_path)
    p = litellm_agent(server, monkeypatch).propose(ctx)
    assert p.changes == {"learning_rate": 2e-5, "kl_coef": 0.002, "epochs": 1.5} and len(server.requests) == 2
    req = server.requests[-1]
    assert req.api == "openai" and req.body["model"] == "test-model"
    assert "What the metrics mean" in req.system_text() and "val/score: steps 5-30" in req.user_text()
    assert len(req.images()) == 1 and req.api_key() == KEY
    (call,) = saved_calls(ctx)
    assert KEY not in json.dumps(call) and call["tokens_in"] > 1000 and math.isclose(call["usd"], (call["tokens_in"] * 1.0 + call["tokens_out"] * 2.0) / 1e6)


def test_litellm_text_only_model_gets_no_images(server, space, tmp_path, monkeypatch):
    server.push(answer())
    litellm_agent(server, monkeypatch, vision=False).propose(proposal_ctx(space, tmp_path))
    req = server.requests[0]
    assert req.images() == [] and "Attached:" not in req.user_text() and "val/score: steps 5-30" in req.user_text()


def test_litellm_malformed_then_valid(server, space, tmp_path, monkeypatch):
    server.push('{"diagnosis": "cut off', answer())
    p = litellm_agent(server, monkeypatch).propose(proposal_ctx(space, tmp_path))
    assert p.resume_step == 30 and len(server.requests) == 2
    assert "not valid JSON" in server.requests[1].messages()[-1]["content"]


# ---- early stopper and error analyzer -----------------------------------------------------------------
def test_stopper_reads_overlay_and_answers_stop(server, space, tmp_path, monkeypatch):
    running = Node(id=3, parent=0, kind="evolve", hparams=space.defaults(), status=NodeStatus.RUNNING, max_steps=60,
                   changes={"learning_rate": 1e-3})
    cur, inc = MetricSeries(records(30, kl_spike_at=20)), MetricSeries(records(30))
    png = plot_overlay(cur, inc, tmp_path / "overlay.png")
    evidence = gather(curve=cur.series("val/score"), step=30, global_offset=0, max_steps=60, iterations_left=4,
                      incumbent=0, incumbent_best=0.45, incumbent_path=inc.series("val/score"),
                      noise_curves=[cur.series("val/score")], comparable=[], noise_prior=0.02, noise_floor=0.005,
                      units=2.0)
    ctx = StopContext(node=running, metrics=cur, incumbent=parent_node(space), incumbent_metrics=inc, steps_left=30,
                      budget_left=4, plots=[str(png)], record_dir=tmp_path / "node3", evidence=evidence)
    server.push('{"decision": "STOP", "reason": "kl spiked to 3 at step 20 and val trails by 0.1"}')
    d = claude(server, monkeypatch, role_models={"stopper": "claude-haiku-4-5"}).should_stop(ctx)
    assert d.stop and d.reason.startswith("STOP: kl spiked") and d.cost.agent_calls == 1
    req = server.requests[0]
    assert req.body["model"] == "claude-haiku-4-5"  # per-role model override: a cheaper stopper
    assert "early stopper" in req.system_text() and "blue" in req.system_text() and len(req.images()) == 1
    assert "Incumbent: node 0, best val/score 0.45" in req.user_text() and "learning_rate=0.001" in req.user_text()
    # the same evidence the heuristic decides on, in words
    assert "## Evidence\n" + evidence.text() in req.user_text() and "noise of one evaluation σ" in req.user_text()
    assert "a gap smaller than the noise is no gap" in req.system_text()
    server.push('{"decision": "MAYBE", "reason": "?"}', '{"decision": "CONTINUE", "reason": "close to the incumbent"}')
    d = claude(server, monkeypatch).should_stop(ctx)
    assert not d.stop and "decision: Input should be 'CONTINUE' or 'STOP'" in server.requests[2].user_text()


def test_analyzer_proposes_a_validated_fix_and_sees_the_chain(server, space, tmp_path, monkeypatch):
    hp = space.defaults()
    earlier = Node(id=4, parent=0, kind="evolve", hparams=hp, status=NodeStatus.FAILED, error="CUDA out of memory",
                   changes={"batch_size": 64})
    failed = Node(id=5, parent=4, kind="debug", hparams={**hp, "batch_size": 48}, status=NodeStatus.FAILED,
                  error="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.0 GiB", debug_of=4,
                  changes={"batch_size": 48})

    def check(fix):
        from llmzero.agents.validation import validate_fix
        rules = PlanRules(space=space, steps_per_epoch=lambda h: 30, max_steps_cap=200, trainer_check=lambda h: [])
        return validate_fix(fix, failed_hparams=failed.hparams, rules=rules)

    ctx = ErrorContext(node=failed, error=failed.error, log_tail="step 3\nTraceback...\nOutOfMemoryError", space=space,
                       metrics=MetricSeries(), history=[earlier], validate=check, record_dir=tmp_path / "node5",
                       resume_step=2)
    server.push('{"fixable": true, "diagnosis": "OOM", "changes": {"batch_size": 0}}',
                '{"fixable": true, "diagnosis": "OOM at batch 48", "changes": {"batch_size": 16}, "rationale": "memory"}')
    fix = claude(server, monkeypatch).analyze_error(ctx)
    assert fix.fixable and fix.changes == {"batch_size": 16}
    user = server.requests[0].user_text()
    assert "Tried to allocate 2.0 GiB" in user and "node 4 (evolve, failed)" in user and "batch_size=64" in user
    assert "resumes this phase's adapter from its last complete checkpoint, step 2" in user
    assert "batch_size=0 is not valid" in server.requests[1].user_text()


def test_images_false_is_the_no_visual_input_ablation(server, space, tmp_path, monkeypatch):
    # Paper Table 2: the same multimodal model, but no plot reaches it (and the search draws none for it at stop checks)
    server.push(f"```json\n{answer()}\n```")
    agent = claude(server, monkeypatch, images=False)
    assert agent.wants_images is False
    agent.propose(proposal_ctx(space, tmp_path))
    (req,) = server.requests
    assert req.images() == [] and "val/score" in req.user_text()

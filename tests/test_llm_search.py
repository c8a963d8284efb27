"""Whole searches with an LLM agent: `trainer=synthetic agent=litellm|claude` against the fake LLM server.

The server (tests/llm_server.py) fakes the provider APIs because tests have no network; the search,
the Hydra config, the clients and the synthetic trainer are the real ones.
"""

import io
import json
import os
import re
import subprocess
import sys

from hydra import compose, initialize_config_dir
from rich.console import Console

from llm_server import Reply, ScriptedLLMServer
from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir

KEY = "sk-search-secret-42"
LRS = [2e-5, 4e-5, 8e-6, 3e-5]


class Brain:
    """Answers like a cooperative model, reading only what the prompt shows it."""

    def __init__(self):
        self.proposals = []
        self.stops = 0

    def __call__(self, rec):
        system, user = rec.system_text(), rec.user_text()
        if "You are the proposer" in system:
            m = re.search(r"Parent checkpoints: steps \[([0-9, ]+)\]", user)
            resume = int(m.group(1).split(",")[-1]) if m else None
            lr = LRS[len(self.proposals) % len(LRS)]
            self.proposals.append(lr)
            changes = {"learning_rate": lr} if resume is not None else {"learning_rate": lr, "lora_rank": 32}
            return json.dumps({"diagnosis": "val/score rises and kl stays low", "changes": changes,
                               "observations": [{"metric": "val/score", "claim": "rises"}],
                               "rationale": "scripted", "resume_step": resume, "epochs": 1.0})
        if "You are the early stopper" in system:
            self.stops += 1
            return json.dumps({"decision": "CONTINUE", "reason": "still improving"})
        return json.dumps({"fixable": False, "diagnosis": "scripted: not fixable"})


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=[
            "trainer=synthetic", "trainer.step_delay_s=0", "search.display=false", "cluster.poll_interval_s=0.01",
            "agent.retry.backoff_s=0", *overrides])


def test_litellm_search_completes_and_proposals_reach_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMZERO_TEST_KEY", KEY)
    brain = Brain()
    with ScriptedLLMServer(default=brain) as server:
        server.push("not json at all")  # the first proposal is malformed and re-asked
        res = run_search(cfg("agent=litellm", "agent.model=openai/test-model", f"agent.api_base={server.openai_base_url}",
                             "agent.api_key_env=LLMZERO_TEST_KEY", "agent.vision=true", "search.budget=6"),
                         tmp_path / "run", Console(file=open(os.devnull, "w")))
    tree = res.tree
    assert len(tree) == 6 and all(n.finished for n in tree)
    llm_nodes = [n for n in tree if n.agent == "litellm"]
    assert len(llm_nodes) == 5  # every non-root phase was proposed by the model
    for n in llm_nodes:
        assert n.hparams["learning_rate"] in LRS and n.cost.agent_calls >= 1 and n.cost.agent_tokens_in > 1000
        assert n.observations and n.observations[0]["check"] in ("supported", "contradicted", "unverifiable")
        assert list((tmp_path / "run" / "nodes" / str(n.id) / "agent_calls").glob("*-proposer.json"))
    verdicts = [json.loads(p.read_text())["verdict"][:8]  # malformed, then re-asked
                for p in sorted((tmp_path / "run" / "nodes" / "1" / "agent_calls").glob("*-proposer.json"))]
    assert verdicts == ["rejected", "accepted"]
    assert brain.stops >= 1  # the early stopper was consulted in flight
    assert all(len(r.images()) == 1 for r in server.requests), "every call carries a plot (parent grid or overlay)"
    # keys never leave the environment
    blob = "".join(p.read_text() for p in (tmp_path / "run").rglob("*") if p.is_file() and p.suffix in (".json", ".yaml", ".jsonl"))
    assert KEY not in blob
    assert res.best is not None and res.recipe is not None


def test_claude_search_from_the_command_line_with_token_totals(tmp_path):
    brain = Brain()
    env = {**os.environ, "ANTHROPIC_API_KEY": KEY, "LLMZERO_CACHE": str(tmp_path / "cache")}
    with ScriptedLLMServer(default=brain) as server:
        server.push(Reply(status=529, text="overloaded", headers={"retry-after": "0"}))
        out = subprocess.run(
            [sys.executable, "-m", "llmzero", "trainer=synthetic", "trainer.step_delay_s=0", "agent=claude",
             f"agent.base_url={server.anthropic_base_url}", "agent.retry.backoff_s=0", "search.budget=5",
             "search.display=false", f"search.dir={tmp_path / 'run'}", "cluster.poll_interval_s=0.01"],
            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    m = re.search(r"agent: (\d+) calls, ([\d.]+)k tokens in .* \$([\d.]+) in all", out.stdout)
    assert m, out.stdout[-2000:]
    assert int(m.group(1)) >= 4 and float(m.group(3)) > 0
    agents = [n["agent"] for n in json.loads((tmp_path / "run" / "tree.json").read_text())["nodes"]]
    assert agents.count("claude") == 4
    assert KEY not in (tmp_path / "run" / "config.yaml").read_text()


def test_missing_key_is_a_clean_command_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([sys.executable, "-m", "llmzero", "trainer=synthetic", "agent=claude",
                          f"search.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert out.returncode == 2 and "ANTHROPIC_API_KEY" in out.stderr and "Traceback" not in out.stderr


def test_agent_dollar_cap_stops_the_search_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with ScriptedLLMServer(default=Brain()) as server:
        res = run_search(cfg("agent=claude", f"agent.base_url={server.anthropic_base_url}",
                             "agent.prices.claude-sonnet-4-6.input=2000", "search.max_agent_usd=20",
                             "search.budget=10", "search.early_stop.enabled=false"),
                         tmp_path / "run", Console(file=open(os.devnull, "w")))
    spent = sum(n.cost.agent_usd for n in res.tree)
    assert res.stop_reason.startswith("agent dollar cap reached") and spent >= 20
    assert 2 <= res.tree.iteration < 10 and all(n.finished for n in res.tree)


def test_a_failing_provider_is_one_warning_line_on_the_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMZERO_TEST_KEY", KEY)
    buf = io.StringIO()
    with ScriptedLLMServer(default=Brain()) as server:
        server.push(Reply(status=400, text="prompt is too long"))  # the first proposal: not retried, gives up
        res = run_search(cfg("agent=litellm", "agent.model=openai/test-model", f"agent.api_base={server.openai_base_url}",
                             "agent.api_key_env=LLMZERO_TEST_KEY", "search.budget=3", "search.early_stop.enabled=false"),
                         tmp_path / "run", Console(file=buf, width=300))
    warnings = [line for line in buf.getvalue().splitlines() if line.strip().startswith("!")]
    assert len(warnings) == 1, buf.getvalue()[-2000:]
    assert "node 1: agent litellm gave up" in warnings[0] and "HTTP 400" in warnings[0]
    assert "the heuristic agent answered instead" in warnings[0]
    assert res.tree[1].agent.startswith("heuristic (fallback: litellm gave up") and res.tree[2].agent == "litellm"

"""The skill-based LLM agent baseline (paper §4.1, B.7): `sweeper.mode=skill_agent agent=litellm|claude` on the
synthetic trainer, against the FAKE provider server (tests/llm_server.py; no network here). The search, the Hydra
config, the real litellm/anthropic clients and the engine are the real ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llm_server import ScriptedLLMServer, SkillBrain
from llmzero.app import run_search
from llmzero.config.schema import ConfigError
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir

KEY = "sk-skill-secret-7"


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=[
            "trainer=synthetic", "trainer.step_delay_s=0.03", "trainer.eval_every=2", "search.display=false",
            "cluster.poll_interval_s=0.01",
            "sweeper.mode=skill_agent", "search.early_stop.interval_steps=2", *overrides])


def litellm(server):
    return ["agent=litellm", "agent.model=openai/test-model", f"agent.api_base={server.openai_base_url}",
            "agent.api_key_env=LLMZERO_TEST_KEY", "agent.vision=true", "agent.retry.backoff_s=0"]


def test_the_agent_plans_resumes_stops_and_gathers_keeping_its_whole_conversation(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMZERO_TEST_KEY", KEY)
    with ScriptedLLMServer(default=SkillBrain(jobs=3)) as server:
        server.push("I would rather explain in prose.")  # not JSON: re-asked, and the re-ask stays in the history
        res = run_search(cfg(*litellm(server), "search.budget=6"), tmp_path / "run",
                         Console(file=open(os.devnull, "w")))
    tree = res.tree
    assert len(tree) == 3 and "the skill agent gathered the results" in res.stop_reason
    first, resumed, restart = tree[0], tree[1], tree[2]
    assert first.kind == "root" and first.hparams == res.tree[0].hparams
    # job 2 resumes job 1's last checkpoint with half its learning rate (B.7: "tune-and-resume")
    assert resumed.kind == "evolve" and resumed.resume_from == 0 and resumed.resume_step == max(first.checkpoints)
    assert resumed.changes == {"learning_rate": first.hparams["learning_rate"] / 2}
    # ... and is stopped by its own check-training, which gives per-parameter verdicts
    assert resumed.status == "early_stopped" and resumed.stop_reason.startswith("STOP")
    assert "learning_rate DECREASE" in resumed.stop_reason
    # job 3 restarts from the base model; the tree has no search of its own: restarts hang under the first job
    assert restart.kind == "scratch" and restart.resume_from is None and restart.parent == 0
    # checks happened on the first job too, with no earlier job to compare against
    checks = [r for r in server.requests if "# check-training: job 0" in r.last_user_text()]
    assert checks, "the first job was checked while it ran"
    # full context: every call resends the whole conversation, so each sends more messages than the one before
    sizes = [len([m for m in r.messages() if m.get("role") != "system"]) for r in server.requests]
    assert sizes == sorted(sizes) and sizes[-1] >= 2 * (len(server.requests) - 1)
    assert all(not r.images() for r in server.requests)  # numbers only, no plots
    saved = json.loads((tmp_path / "run" / "skill_agent" / "conversation.json").read_text())
    assert len(saved) == sizes[-1] + 1 and saved[1]["text"] == "I would rather explain in prose."
    # the API cost of each iteration is on its node, as for LLMZero; the call that ended it on the last job
    assert all(n.cost.agent_calls >= 1 and n.cost.agent_tokens_in > 1000 for n in tree)
    assert sum(n.cost.agent_calls for n in tree) == len(server.requests)
    assert json.loads((tmp_path / "run" / "tree.json").read_text())["meta"]["agent"] == "skill agent (litellm)"
    assert KEY not in (tmp_path / "run" / "skill_agent" / "conversation.json").read_text()


def test_a_resumed_search_continues_the_same_conversation(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMZERO_TEST_KEY", KEY)
    with ScriptedLLMServer(default=SkillBrain(jobs=1)) as server:
        run_search(cfg(*litellm(server), "search.budget=1"), tmp_path / "run", Console(file=open(os.devnull, "w")))
        before = len(json.loads((tmp_path / "run" / "skill_agent" / "conversation.json").read_text()))
        res = run_search(cfg(*litellm(server), "search.budget=4"), tmp_path / "run",
                         Console(file=open(os.devnull, "w")))
        last = server.requests[-1]
    assert "the skill agent gathered the results" in res.stop_reason and len(res.tree) == 1
    sent = [m for m in last.messages() if m.get("role") != "system"]
    assert len(sent) == before + 1  # the earlier turns went out again, from the saved conversation


def test_the_baseline_needs_an_llm_agent():
    with pytest.raises(ConfigError, match=r"sweeper.mode=skill_agent .* agent=heuristic .*agent=claude or "
                                          r"agent=litellm"):
        run_search(cfg("agent=heuristic"), Path("/tmp/never-made-skill"), Console(file=open(os.devnull, "w")))


def test_the_readme_command_runs_against_the_fake_server_script(tmp_path):
    # The README's lines: the FAKE server as a script, then the baseline from the command line.
    port = 18000 + os.getpid() % 1000
    here = Path(__file__).parent
    server = subprocess.Popen([sys.executable, str(here / "llm_server.py"), "--port", str(port), "--jobs", "2"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert "FAKE LLM server" in server.stdout.readline()
        env = {**os.environ, "LLMZERO_FAKE_KEY": "not-a-real-key"}
        out = subprocess.run(
            [sys.executable, "-m", "llmzero", "sweeper.mode=skill_agent", "agent=litellm",
             "agent.model=openai/fake-model", f"agent.api_base=http://127.0.0.1:{port}/v1",
             "agent.api_key_env=LLMZERO_FAKE_KEY", "trainer=synthetic", "search.display=false",
             f"search.dir={tmp_path / 'skill'}", "wandb.mode=disabled"],
            capture_output=True, text=True, env=env, timeout=300)
    finally:
        server.terminate()
        server.wait(10)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "the skill agent gathered the results" in out.stdout and "best path" in out.stdout
    assert (tmp_path / "skill" / "skill_agent" / "conversation.json").is_file()

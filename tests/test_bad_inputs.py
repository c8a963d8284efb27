"""Bad input ends in one clear message, and a misbehaving agent never stops the search (toward issue 10)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.agents.base import Proposal
from llmzero.agents.heuristic import HeuristicAgent
from llmzero.app import run_search
from llmzero.config.store import register_configs
from llmzero.paths import conf_dir
from llmzero.state.lock import SearchLock


def llmzero(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "llmzero", "trainer=synthetic", "wandb.mode=disabled", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("override, message", [
    ("+search.budgte=3", "search.budgte is not a setting; did you mean search.budget?"),
    ("+search.uct.cc=1", "search.uct.cc is not a setting; did you mean search.uct.c?"),
    ("+cluster.max_concurent=2", "cluster.max_concurent is not a setting; did you mean cluster.max_concurrent?"),
    ("hparams.learning_rate=1" + "0" * 400, "hyperparameter hparams.learning_rate=1000"),
    ("hparams.learning_rate=1e400", "hyperparameter hparams.learning_rate=inf is not valid"),
    ("search.uct.temperature=0", "search.uct.temperature=0.0 is not valid"),
    ("cluster.poll_interval_s=-1", "cluster.poll_interval_s=-1.0 is not valid"),
])
def test_bad_settings_are_one_message_and_exit_2(tmp_path, override, message):
    r = llmzero(override, f"search.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert r.returncode == 2, r.stdout[-500:]
    assert message in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "run" / "tree.json").exists()  # refused before any phase ran


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=["trainer=synthetic", "trainer.step_delay_s=0",
                                                        "search.display=false", "wandb.mode=disabled",
                                                        "cluster.poll_interval_s=0.01", *overrides])


class RankChanger(HeuristicAgent):
    """A plug-in agent that changes lora_rank along a path (only allowed from scratch)."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        return Proposal(changes={"lora_rank": 16}, diagnosis="bigger adapter", rationale="?",
                        resume_step=max(ctx.parent_checkpoints) if ctx.parent_checkpoints else None)


class Crashing(HeuristicAgent):
    """A plug-in agent with a bug, and one whose observations have the wrong shape."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        if ctx.node_id % 2:
            raise ZeroDivisionError("division by zero in my agent")
        p = super().propose(ctx)
        p.observations = [{"metric": "kl", "claim": "rose", "unexpected": [1, 2]}, "not even a dict"]
        return p


@pytest.mark.parametrize("agent, note", [("RankChanger", "fallback: plug answered invalidly: changes.lora_rank"),
                                         ("Crashing", "fallback: plug failed: ZeroDivisionError")])
def test_a_misbehaving_plug_in_agent_is_answered_by_the_fallback(tmp_path, agent, note):
    res = run_search(cfg(f"agent._target_=test_bad_inputs.{agent}", "agent.name=plug", "search.budget=4"),
                     tmp_path / "run", Console(file=open(os.devnull, "w")))
    assert len(res.tree) == 4 and all(n.finished for n in res.tree)
    children = [n for n in res.tree if n.parent is not None]
    assert any(note in n.agent for n in children), [n.agent for n in children]
    if agent == "Crashing":
        odd = [n for n in children if n.id % 2 == 0 and "fallback" not in n.agent]
        assert odd and all(o["check"] == "unverifiable" and "malformed" in o["check_reason"]
                           for n in odd for o in n.observations)


def test_sigterm_saves_the_state_releases_the_lock_and_the_search_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["trainer.step_delay_s=0.05", "search.budget=4", f"search.dir={out}"]
    proc = subprocess.Popen([sys.executable, "-m", "llmzero", "trainer=synthetic", "wandb.mode=disabled", *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            tree = json.loads((out / "tree.json").read_text())
        except (OSError, ValueError):
            continue
        if any(n["status"] == "running" and n["id"] >= 1 for n in tree["nodes"]):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated (SIGTERM); state is saved" in err and "Traceback" not in err
    saved = json.loads((out / "tree.json").read_text())
    assert any(n["status"] == "running" for n in saved["nodes"])  # in flight when stopped: relaunched on resume
    assert not (out / "search.owner.json").exists()
    with SearchLock(out):  # released
        pass
    r = llmzero(*args, cwd=tmp_path, timeout=180)
    assert r.returncode == 0 and "resuming search" in r.stdout, r.stderr[-1000:]
    assert len(json.loads((out / "tree.json").read_text())["nodes"]) == 4

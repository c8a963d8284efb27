"""Bad input ends in one clear message, and a misbehaving agent never stops the search (toward issue 10)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.state.lock import SearchLock

from bad_input_cases import CASES, run_all


def llmzero(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "llmzero", "trainer=synthetic", "wandb.mode=disabled", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return run_all(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_every_bad_input_ends_in_one_clear_message(index, outcomes):
    case, out = CASES[index], outcomes[index]
    assert out.code == case.code, out.out[-3000:]
    assert "Traceback" not in out.out
    missing = [e for e in case.expect if e not in out.out]
    assert not missing, (missing, out.out[-3000:])
    if case.code == 2:
        assert out.out.count("llmzero: error:") == 1  # one message, not a chain
        assert not out.ran_phase  # refused before any phase ran
        assert out.untouched in (None, True)  # a refused run leaves the search it refused as it was, damage included


def test_the_table_has_every_kind_of_bad_input():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 60 and kinds == {"setting", "filesystem", "damaged state", "plug-in agent", "plug-in backend"}


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=["trainer=synthetic", "trainer.step_delay_s=0",
                                                        "search.display=false", "wandb.mode=disabled",
                                                        "cluster.poll_interval_s=0.01", *overrides])


@pytest.mark.parametrize("agent, note", [("RankChanger", "fallback: plug answered invalidly: changes.lora_rank"),
                                         ("Crashing", "fallback: plug failed: ZeroDivisionError")])
def test_a_misbehaving_plug_in_agent_is_answered_by_the_fallback(tmp_path, agent, note):
    res = run_search(cfg(f"agent._target_=bad_input_cases.{agent}", "agent.name=plug", "search.budget=4"),
                     tmp_path / "run", Console(file=open(os.devnull, "w")))
    assert len(res.tree) == 4 and all(n.finished for n in res.tree)
    children = [n for n in res.tree if n.parent is not None]
    assert any(note in n.agent for n in children), [n.agent for n in children]
    if agent == "Crashing":
        odd = [n for n in children if n.id % 2 == 0 and "fallback" not in n.agent]
        assert odd and all(o["check"] == "unverifiable" and "malformed" in o["check_reason"]
                           for n in odd for o in n.observations)


@pytest.mark.parametrize("sig, code, words", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                              (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_sigint_save_the_state_release_the_lock_and_the_search_resumes(tmp_path, sig, code, words):
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
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and f"{words}; state is saved" in err and "Traceback" not in err
    saved = json.loads((out / "tree.json").read_text())
    assert any(n["status"] == "running" for n in saved["nodes"])  # in flight when stopped: relaunched on resume
    assert not (out / "search.owner.json").exists()
    with SearchLock(out):  # released
        pass
    r = llmzero(*args, cwd=tmp_path, timeout=180)
    assert r.returncode == 0 and "resuming search" in r.stdout, r.stderr[-1000:]
    assert len(json.loads((out / "tree.json").read_text())["nodes"]) == 4


@pytest.mark.parametrize("fault, words", [("EROFS", "Read-only file system"), ("ENOSPC", "No space left on device")])
def test_a_disk_that_turns_read_only_or_full_mid_run_ends_in_one_message_and_the_search_resumes(tmp_path, fault, words):
    """tests/faulty_disk.py is a FAKE fault (real ones need root-only tricks): after the journal's fourth save every
    write under the search directory fails with the errno the kernel would give."""
    out = tmp_path / "run"
    args = ["trainer=synthetic", "trainer.step_delay_s=0.01", "wandb.mode=disabled", "search.budget=4"]
    r = subprocess.run([sys.executable, str(Path(__file__).parent / "faulty_disk.py"), fault, "4", str(out), *args],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stderr[-2000:]
    assert f"llmzero: error: filesystem error: {words} (writing in {out}" in r.stderr
    assert "rerun the same command to resume" in r.stderr and "Traceback" not in r.stderr + r.stdout
    saved = json.loads((out / "tree.json").read_text())  # the last save that succeeded, whole
    assert 1 <= len(saved["nodes"]) < 4 and not (out / "search.owner.json").exists()
    assert not list(out.glob(".*.tmp"))
    again = llmzero(*args[1:], f"search.dir={out}", cwd=tmp_path, timeout=180)
    assert again.returncode == 0 and "resuming search" in again.stdout, again.stderr[-2000:]
    assert len(json.loads((out / "tree.json").read_text())["nodes"]) == 4


@pytest.fixture
def small_search(tmp_path):
    out = tmp_path / "run"
    r = llmzero("trainer.step_delay_s=0", "search.budget=2", "search.display=false", f"search.dir={out}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.suffix != ".log"}


def test_a_second_command_on_a_busy_search_is_refused_and_changes_nothing_there(small_search, tmp_path):
    with SearchLock(small_search):  # this test process stands for the running search (its owner file included)
        before = _files(small_search)
        r = llmzero("trainer.step_delay_s=0", "search.budget=5", f"search.dir={small_search}", cwd=tmp_path)
        after = _files(small_search)
    assert r.returncode == 2 and f"search directory {small_search} is in use by process {os.getpid()}" in r.stderr
    assert after == before and not (small_search / ".hydra").exists()


def test_the_last_good_copy_restores_a_damaged_journal_and_orphan_temporary_files_are_removed(small_search, tmp_path):
    (small_search / "tree.json").write_text('{"llmzero_tree": 1, "nodes": [')  # cut short
    (small_search / ".tree.json.k3j2_x.tmp").write_text("left by a kill -9")
    args = ("trainer.step_delay_s=0", "search.budget=3", f"search.dir={small_search}")
    r = llmzero(*args, cwd=tmp_path)
    assert r.returncode == 2
    restore = r.stderr.split("restore it with `")[1].split("`")[0]
    assert restore == f"cp {small_search / 'tree.last-good.json'} {small_search / 'tree.json'}"
    subprocess.run(restore.split(), check=True)
    r = llmzero(*args, cwd=tmp_path)
    assert r.returncode == 0 and "resuming search" in r.stdout, r.stderr[-2000:]
    assert len(json.loads((small_search / "tree.json").read_text())["nodes"]) == 3
    assert not list(small_search.glob(".*.tmp"))

"""tree.json carries a format version: a search written before versions existed resumes, a newer or damaged
journal is refused with a message, never a traceback."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import add

from llmzero.state.rundir import RunDir
from llmzero.tree import NodeStatus, Tree, journal
from llmzero.tree.journal import FORMAT_KEY, FORMAT_VERSION, JournalError

FIXTURE = Path(__file__).parent / "fixtures" / "search_v0"  # written by the code of b246a7d (no version key)


def llmzero(*args, cwd):
    return subprocess.run([sys.executable, "-m", "llmzero", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def test_dump_writes_the_format_version_and_load_reads_it_back():
    t = Tree(iteration=2)
    add(t, 0, val=0.4)
    add(t, 1, 0, status=NodeStatus.FAILED)
    raw = journal.dump(t, {"task": "x"})
    assert raw[FORMAT_KEY] == FORMAT_VERSION
    t2, meta = journal.load(json.loads(json.dumps(raw)))
    assert journal.dump(t2, meta) == raw


@pytest.mark.parametrize("raw, message", [
    ({FORMAT_KEY: FORMAT_VERSION + 1, "nodes": []}, f"tree format version {FORMAT_VERSION + 1} is not one"),
    ({FORMAT_KEY: "1", "nodes": []}, "tree format version '1' is not one"),
    ([1, 2], "expected a JSON object holding a search tree, found list"),
    ({"nodes": [{"id": 0}]}, "is not a valid node"),
])
def test_unreadable_journals_are_refused_with_a_reason(raw, message):
    with pytest.raises(JournalError, match=message):
        journal.load(raw)


def test_dangling_references_are_found():
    t = Tree()
    add(t, 0, val=0.4)
    add(t, 2, 1, val=0.5)
    assert journal.dangling(t) == ["node 2 names parent=1, which is not in the tree",
                                   "node 2 names resume_from=1, which is not in the tree"]


def test_a_search_written_before_format_versions_resumes(tmp_path):
    run = tmp_path / "old"
    shutil.copytree(FIXTURE, run)
    before = json.loads((run / "tree.json").read_text())
    assert FORMAT_KEY not in before and before["iteration"] == 3
    r = llmzero(f"search.resume={run}", "search.budget=5", "wandb.mode=disabled", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming search" in r.stdout
    after = json.loads((run / "tree.json").read_text())
    assert after[FORMAT_KEY] == FORMAT_VERSION and after["iteration"] == 5 and len(after["nodes"]) == 5
    for old, new in zip(before["nodes"], after["nodes"]):  # the finished phases are kept as they were
        assert {k: new[k] for k in old} == old
    assert all(n["status"] in ("completed", "early_stopped", "failed") for n in after["nodes"])


def test_a_newer_or_damaged_journal_is_a_clear_error(tmp_path):
    run = tmp_path / "new"
    shutil.copytree(FIXTURE, run)
    raw = json.loads((run / "tree.json").read_text())
    (run / "tree.json").write_text(json.dumps({**raw, FORMAT_KEY: 99}))
    r = llmzero(f"search.resume={run}", "search.budget=5", "wandb.mode=disabled", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "tree format version 99" in r.stderr and "upgrade" in r.stderr and str(run / "tree.json") in r.stderr
    (run / "tree.json").write_text('{"iteration": 3, "nodes": [')  # truncated
    r = llmzero(f"search.resume={run}", "wandb.mode=disabled", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(run / "tree.json") in r.stderr


def test_a_report_still_shows_a_tree_with_a_missing_node(tmp_path):
    t = Tree()
    add(t, 0, val=0.4)
    add(t, 2, 1, val=0.5)
    rundir = RunDir(tmp_path)
    rundir.save_tree(t, {})
    with pytest.raises(JournalError, match="node 2 names parent=1"):
        rundir.load_tree()
    assert len(rundir.load_tree(whole=False)[0]) == 2

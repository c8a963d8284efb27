"""A tiny-model CPU search on each benchmark's fixture through the default TRL backend and the real command line:
the plumbing end to end (loader, prompts, rewards, per-subtask metrics, report and W&B), with scores near zero, as a
model this small earns on these tasks. PaperSearchQA's, with its search tool: test_task_search_tool.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from outputs_check import check_search_outputs

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
# One phase of two steps: the child phases' plumbing is the same for every task and tested on the default task.
SHORT = ["+model.build.sft_steps=0", "search.budget=1", "hparams.max_steps=2", "hparams.batch_size=2", "hparams.rollouts=2",
         "hparams.response_length=16", "trainer.eval_every=2", "trainer.save_every=2", "search.display=false"]
# builtin:tiny without its warm start builds in seconds (PaperSearchQA's test gives it a short one)
CASES = {  # extra overrides, the subtask names val/<subtask> may carry
    "chemcot": ([], ("mol_und", "mol_edit", "reaction", "mol_opt")),  # the family scores
    "ssmr": ([], ("scale", "beat", "chord", "interval")),
    "wildsci": ([], ("physical_sciences", "biological_sciences", "earth_and_environmental_sciences")),
}


def run_fixture_search(task: str, extra: list[str], out: Path, cache: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "llmzero", f"task={task}", f"task.data_files={FIXTURES / f'{task}.jsonl'}",
            *SHORT, *extra, f"search.dir={out}"]
    env = {**os.environ, "LLMZERO_CACHE": str(cache)}
    return subprocess.run(args, cwd=out.parent, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CASES))
def test_a_tiny_search_completes_on_the_fixture(task, tmp_path):
    extra, subtasks = CASES[task]
    out = tmp_path / "run"
    r = run_fixture_search(task, extra, out, tmp_path / "cache")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    tree = json.loads((out / "tree.json").read_text())
    assert [n["status"] for n in tree["nodes"]] == ["completed"]
    records = [json.loads(line) for line in (out / "nodes/0/metrics.jsonl").read_text().splitlines()]
    evaluated = [rec for rec in records if "val/score" in rec]
    assert evaluated and 0.0 <= evaluated[-1]["val/score"] <= 1.0
    subscores = {k[len("val/"):] for k in evaluated[-1] if k.startswith("val/") and k != "val/score"}
    assert subscores and subscores & set(subtasks), subscores  # the 2 val rows' subtasks, by their own names
    log = (out / "nodes/0/log.txt").read_text()
    assert f"task={task}:" in log and "rows pooled" in log  # the loader said how it split the fixture
    check_search_outputs(out)  # plots, W&B offline runs and the report

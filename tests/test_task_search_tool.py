"""A tiny-model CPU search on PaperSearchQA's fixture with its search tool: rollouts and validation call BM25 over
the fixture corpus in the Search-R1 protocol, and the phase log shows a rollout that searched and what came back."""

from __future__ import annotations

import json

import pytest

from outputs_check import check_search_outputs
from test_task_searches import FIXTURES, run_fixture_search

# A 150-step warm start on trajectories that search once (papersearchqa.reference) teaches the tiny model to open
# and close <search> (80 steps do not); one document per search keeps the responses short. (The shared settings
# set model.build.sft_steps=0 first, hence no "+" here.)
TOOL = ["model.build.sft_steps=150", "+model.build.sft_batch_size=6",
        f"task.retriever.corpus={FIXTURES}/pubmed_corpus.jsonl",
        "task.retriever.topk=1", "hparams.response_length=160"]


@pytest.mark.slow
def test_a_tiny_search_on_papersearchqa_calls_the_search_tool(tmp_path):
    out = tmp_path / "run"
    r = run_fixture_search("papersearchqa", TOOL, out, tmp_path / "cache")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    tree = json.loads((out / "tree.json").read_text())
    assert [n["status"] for n in tree["nodes"]] == ["completed"]
    logs = "".join((out / "nodes" / str(n["id"]) / "log.txt").read_text() for n in tree["nodes"])
    assert "search tool: top 1 documents, at most 2 searches per response" in logs
    # sampled rollouts search at random (their count is logged each step); the greedy validation's do every time
    assert "a greedy response that searched: <search>" in logs and "<information>Doc 1 (Title:" in logs, logs[-3000:]
    assert "rollouts searched" in logs
    records = [json.loads(line) for line in (out / "nodes/0/metrics.jsonl").read_text().splitlines()]
    assert any("val/score" in rec for rec in records)
    check_search_outputs(out)

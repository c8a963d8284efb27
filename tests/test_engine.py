"""The search loop in-process on the synthetic backend: debug chains, caps, early stopping, invalid answers."""

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.agents.base import Proposal, StopDecision
from llmzero.agents.heuristic import HeuristicAgent
from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.trainers.synthetic import SyntheticPhase, SyntheticTrainer


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=["trainer=synthetic", "trainer.step_delay_s=0", "search.display=false",
                                                        "cluster.poll_interval_s=0.01", *overrides])


def run(tmp_path: Path, *overrides):
    return run_search(cfg(*overrides), tmp_path / "run", Console(file=open("/dev/null", "w")))


def test_failed_root_is_fixed_by_a_debug_chain_that_is_lifted(tmp_path):
    # batch 32 × rollouts 4 × length 32 = 4096 > 1000: OOM. The analyzer halves the batch down the chain
    # (16 -> 2048, 8 -> 1024, 4 -> 512 fits); the fix replaces the failed root, the chain is pruned.
    res = run(tmp_path, "trainer.memory_budget=1000", "search.budget=5")
    t = res.tree
    assert [t[i].status for i in (0, 1, 2)] == ["failed"] * 3
    assert [t[i].debug_of for i in (1, 2, 3)] == [0, 1, 2]
    fixed = t[3]
    assert fixed.kind == "debug" and fixed.status == "completed" and fixed.hparams["batch_size"] == 4
    assert fixed.parent is None and fixed.reparented_from == 2
    assert all(t[i].pruned for i in (0, 1, 2)) and not fixed.pruned
    assert t.root().id == 3
    assert t[4].parent == 3  # the search carries on from the fixed phase
    assert [n.id for n in res.path][0] == 3


def test_a_fix_resumes_the_failed_phase_from_its_last_checkpoint(tmp_path):
    # Paper Table 8: "Node 2 resumes from Node 1's checkpoint (Node 1 failed but produced a valid checkpoint)".
    # LR 2.5e-3 diverges at step 4 after saving steps 1-3; the fix loads step 3 and runs the steps left.
    res = run(tmp_path, "hparams.learning_rate=2.5e-3", "trainer.save_every=1", "trainer.eval_every=1",
              "search.budget=3")
    t = res.tree
    failed, fix = t[0], t[1]
    assert failed.status == "failed" and "NaN" in failed.error and failed.checkpoints == [1, 2, 3]
    assert fix.kind == "debug" and fix.debug_of == 0 and fix.hparams["learning_rate"] < 2.5e-3
    assert (fix.resume_from, fix.resume_step, fix.global_offset) == (0, 3, 3)
    assert fix.max_steps == failed.max_steps - 3 and fix.status == "completed"
    assert fix.parent is None and failed.pruned  # lifted in place of the failure (§3.2)
    assert [n.id for n in t.strategy_path(1)] == [0, 1]  # the failed phase's three steps are part of the strategy
    log = (tmp_path / "run" / "nodes" / "1" / "log.txt").read_text()
    assert "nodes/0/checkpoints/step_3 (fresh optimiser)" in log.splitlines()[0]


def test_a_fix_of_a_phase_that_saved_nothing_restarts_where_it_started(tmp_path):
    res = run(tmp_path, "trainer.memory_budget=1000", "search.budget=2")
    failed, fix = res.tree[0], res.tree[1]
    assert failed.checkpoints == [] and (fix.resume_from, fix.resume_step, fix.global_offset) == (None, None, 0)


class DiskFullPhase(SyntheticPhase):
    def _run(self):
        raise OSError(28, "No space left on device", str(self.dir / "metrics.jsonl"))


class DiskFullOnce(SyntheticTrainer):
    """A FAKE full disk: node 1's first attempt dies writing, as a phase process would on ENOSPC."""

    def start(self, spec):
        marker = Path(spec.output_dir).parent / "disk-was-full"
        if spec.node_id == 1 and not marker.exists():
            marker.write_text("once\n")
            return DiskFullPhase(self, spec)
        return super().start(spec)


def test_a_phase_that_failed_on_a_full_disk_is_run_again_not_debugged(tmp_path):
    import pytest

    with pytest.raises(OSError, match="No space left on device"):
        run(tmp_path, "trainer._target_=test_engine.DiskFullOnce", "search.budget=3")
    saved = json.loads((tmp_path / "run" / "tree.json").read_text())
    assert [n["status"] for n in saved["nodes"]] == ["completed", "running"]  # not "failed": nothing to debug
    res = run(tmp_path, "trainer._target_=test_engine.DiskFullOnce", "search.budget=3")  # space freed: rerun
    assert [n.status for n in res.tree][:2] == ["completed", "completed"] and res.tree[1].attempts == 2
    assert not any(n.kind == "debug" for n in res.tree)


def test_gpu_hour_cap_stops_the_search(tmp_path):
    res = run(tmp_path, "trainer.step_delay_s=0.01", "cluster.gpus_per_phase=8", "search.max_gpu_hours=0.0005",
              "search.budget=10")
    assert "GPU-hour cap" in res.stop_reason
    assert len(res.tree) < 10


def test_early_stopper_stops_a_dominated_phase_in_flight(tmp_path):
    res = run(tmp_path, "trainer.step_delay_s=0.005", "search.budget=16")
    stopped = [n for n in res.tree if n.status == "early_stopped"]
    assert stopped, "the heuristic stopper should stop at least one dominated phase"
    for n in stopped:
        assert n.stop_reason.startswith("STOP") and n.steps_done < n.max_steps
        assert n.checkpoints and max(n.checkpoints) == n.steps_done  # final checkpoint kept
        assert n.best_val is not None  # its best score still counts
        assert n.stop_checks[-1]["stop"] and n.stop_checks[-1]["reason"] == n.stop_reason
    # every decision is kept with the evidence it was taken on and, the search being over, what followed it
    checks = [(n, c) for n in res.tree for c in n.stop_checks]
    assert len(checks) > len(stopped)
    for n, c in checks:
        ev = c["evidence"]
        assert {"best", "level", "noise", "incumbent_best", "trend_gain", "late_rise", "reach", "gap"} <= set(ev)
        assert ev["noise"] > 0 and c["agent"] == "heuristic" and c["outcome"]["text"]
        if not c["stop"] and ev["incumbent_best"] is not None:
            assert c["outcome"]["beat_incumbent"] == (n.best_val > ev["incumbent_best"])
    saved = json.loads((tmp_path / "run" / "tree.json").read_text())
    assert [n["stop_checks"] for n in saved["nodes"]] == [n.stop_checks for n in res.tree]
    report = (tmp_path / "run" / "report.md").read_text()
    section = report.split("## Early stopping\n", 1)[1]
    # a STOP at a phase's last step leaves it completed, so count the decisions, not the stopped phases
    assert f"{len(checks)} decisions, {sum(c['stop'] for _, c in checks)} STOP" in section
    assert f"| {stopped[0].id} | {stopped[0].stop_checks[-1]['step']} | STOP |" in section
    html = (tmp_path / "run" / "report.html").read_text()
    assert '<section id="stop-section">' in html and html.count('data-node="') >= len(checks)


class BadAgent(HeuristicAgent):
    """Answers outside the schema, as a confused LLM might."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        return Proposal(changes={"learning_rate": 5.0, "lora_rank": 999}, diagnosis="?", rationale="?",
                        resume_step=3)

    def should_stop(self, ctx):
        return StopDecision(False, "continue")


def test_invalid_agent_answer_falls_back_to_heuristic_and_is_recorded(tmp_path):
    res = run(tmp_path, "agent._target_=test_engine.BadAgent", "agent.name=bad", "search.budget=3")
    evolved = [n for n in res.tree if n.kind == "evolve"]
    assert evolved and all("fallback: bad answered invalidly" in n.agent for n in evolved)
    assert all(n.status == "completed" for n in res.tree)
    prop = json.loads((tmp_path / "run/nodes/1/proposal.json").read_text())
    assert "learning_rate=5.0 is not valid" in prop["agent"]


class TwoChildren(HeuristicAgent):
    """Proposes one promising child (a useful learning rate, resumed at the parent's best) and one
    dominated child (a learning rate so high that it stalls, resumed from an early checkpoint);
    the heuristic stopper decides about both while they run."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        promising = ctx.node_id == 1
        lr, resume = (4e-5, max(ctx.parent_checkpoints)) if promising else (3e-4, min(ctx.parent_checkpoints))
        return Proposal(changes={"learning_rate": lr}, diagnosis="scripted", rationale="scripted",
                        resume_step=resume, max_steps=60 if promising else 200)


def test_stopper_stops_the_dominated_phase_and_lets_the_promising_one_finish(tmp_path):
    res = run(tmp_path, "agent._target_=test_engine.TwoChildren", "agent.name=two", "search.budget=3",
              "trainer.step_delay_s=0.03", "search.early_stop.interval_steps=5", "search.early_stop.min_evals=2")
    promising, dominated = res.tree[1], res.tree[2]
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    checks = {n: [e for e in events if e["event"] == "stop_check" and e["node"] == n] for n in (1, 2)}

    assert promising.status == "completed" and promising.steps_done == promising.max_steps == 60
    assert checks[1] and not any(e["stop"] for e in checks[1])  # consulted, and told to continue

    assert dominated.status == "early_stopped" and dominated.steps_done < 200
    assert checks[2][-1]["stop"] and dominated.stop_reason.startswith("STOP")
    log = (tmp_path / "run" / "nodes" / "2" / "log.txt").read_text()
    assert f"stopped at step {dominated.steps_done}" in log  # the backend's stop() was called
    assert max(dominated.checkpoints) == dominated.steps_done  # final checkpoint kept
    assert dominated.best_val is not None and dominated.validated  # its score still counts
    assert (tmp_path / "run" / "nodes" / "2" / "overlays").is_dir()  # the stopper's overlay plots

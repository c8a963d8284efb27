"""The rule-based agent: diagnosis patterns (§4.3), checkpoint/epoch decisions, early stopping, error fixes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from llmzero.agents.base import Agent, ErrorContext, ProposalContext, StopContext
from llmzero.agents.claims import SUPPORTED, check_observation
from llmzero.agents.diagnosis import KL_SPIKE, PLATEAU, Thresholds, diagnose
from llmzero.agents.heuristic import HeuristicAgent, choose_resume, phase_max_steps
from llmzero.agents.validation import PlanRules, validate_proposal
from llmzero.hparams.space import CAPACITY, HParamSpace
from llmzero.metrics import names
from llmzero.metrics.store import MetricSeries
from llmzero.tree import Node, NodeKind, NodeStatus

ROOT = Path(__file__).resolve().parents[1]
SPACE = HParamSpace.from_config(yaml.safe_load((ROOT / "conf/search/default.yaml").read_text())["space"])
STEPS = range(1, 21)
VAL_STEPS = (5, 10, 15, 20)

HEALTHY = {
    names.KL: lambda s: 0.002,
    names.ENTROPY: lambda s: 1.0 - 0.005 * s,
    names.RESPONSE_CLIP_RATIO: lambda s: 0.01,
    names.RESPONSE_LENGTH: lambda s: 500.0 + s,
    names.ZERO_STD_FRAC: lambda s: 0.05,
    names.GRAD_NORM: lambda s: 0.5,
    names.CLIP_RATIO: lambda s: 0.05,
    names.REWARD_MEAN: lambda s: 0.3 + 0.01 * s,
}
RISING_VAL = {5: 0.30, 10: 0.36, 15: 0.42, 20: 0.48}
FLAT_VAL = {5: 0.40, 10: 0.41, 15: 0.40, 20: 0.405}  # no gain: a KL rise alongside it is a warning (§4.3.1)


def metrics(val: dict[int, float] | None = RISING_VAL, steps=STEPS, **overrides) -> MetricSeries:
    """Train curves from HEALTHY with overrides (metric names with '/' and ':' passed via a dict)."""
    curves = dict(HEALTHY)
    for key, fn in overrides.items():
        curves[key.replace("__", "/")] = fn
    recs = []
    for s in steps:
        r = {names.STEP: s}
        for key, fn in curves.items():
            if fn is not None:
                r[key] = fn(s)
        if val and s in val:
            r[names.VAL_SCORE] = val[s]
        recs.append(r)
    return MetricSeries(recs)


def parent_node(ms: MetricSeries | None = None, node_id: int = 3, **hp) -> Node:
    hparams = {**SPACE.defaults(), **hp}
    best, step = ms.best_val() if ms is not None else (None, None)
    return Node(id=node_id, parent=0, kind=NodeKind.EVOLVE, hparams=hparams, status=NodeStatus.COMPLETED,
                max_steps=20, steps_done=20, best_val=best, best_step=step, checkpoints=[5, 10, 15, 20])


def pctx(ms: MetricSeries, node: Node | None = None, *, scratch=False, ckpts=(5, 10, 15, 20), spe=50, cap=200):
    node = node or parent_node(ms)
    return ProposalContext(parent=node, parent_metrics=ms, parent_checkpoints=[] if scratch else list(ckpts),
                           path=[node], best_val=node.best_val, space=SPACE, scratch=scratch, steps_per_epoch=spe,
                           default_max_steps=50, max_steps_cap=cap, budget_left=5)


def assert_valid(node: Node, prop, *, scratch=False, ckpts=(5, 10, 15, 20), cap=200) -> dict:
    """Every proposal passes the search's own validation; returns the child's configuration."""
    rules = PlanRules(space=SPACE, steps_per_epoch=lambda hp: 50, max_steps_cap=cap, trainer_check=lambda hp: [])
    plan = validate_proposal(prop, parent_hparams=node.hparams, parent_checkpoints=[] if scratch else list(ckpts),
                             scratch=scratch, rules=rules)
    for key, value in plan.hparams.items():
        spec = SPACE.specs[key]
        if spec.type in ("int", "float"):
            assert spec.low <= value <= spec.high, key
        if spec.type == "int":
            assert type(value) is int, key
        if spec.role == CAPACITY:
            assert value >= node.hparams[key], f"capacity {key} decreased"
    assert plan.hparams["lora_rank"] == node.hparams["lora_rank"]
    assert "lora_rank" not in prop.changes
    for key, value in prop.changes.items():
        assert value != node.hparams[key], f"{key} listed but unchanged"
    return plan.hparams


AGENT = HeuristicAgent(name="heuristic", seed=0)


def test_agent_protocol_and_kwargs():
    agent = HeuristicAgent(name="heuristic", seed=7, unknown_option=True)
    assert isinstance(agent, Agent) and agent.name == "heuristic" and agent.seed == 7


def test_root_returns_default_configuration():
    ctx = pctx(metrics())
    ctx.parent = None
    prop = AGENT.propose(ctx)
    assert prop.changes == {} and prop.diagnosis == "default configuration θ0" and prop.resume_step is None
    assert prop.agent == "heuristic"


def test_kl_spike_raises_kl_and_lowers_lr():
    ms = metrics(FLAT_VAL, kl=lambda s: 0.002 if s <= 10 else 0.03)  # 6x its start (floor 0.005)
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["kl_coef"] == pytest.approx(0.002)  # 0.001 x2
    assert prop.changes["learning_rate"] == pytest.approx(5e-6)
    assert "KL spike" in prop.diagnosis
    kl_obs = [o for o in prop.observations if o.metric == names.KL]
    assert kl_obs and "0.03" in kl_obs[0].claim and (kl_obs[0].start_step, kl_obs[0].end_step) == (1, 20)
    assert prop.agent == "heuristic" and "kl_coef" in prop.rationale
    assert_valid(node, prop)


def test_severe_kl_spike_and_bounds():
    ms = metrics(FLAT_VAL, kl=lambda s: 0.002 if s <= 10 else 0.2)  # 40x
    prop = AGENT.propose(pctx(ms))
    assert prop.changes["kl_coef"] == pytest.approx(0.005)  # 0.001 x5
    node = parent_node(ms, kl_coef=0.9, learning_rate=1e-7)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["kl_coef"] == 1.0  # clamped to the upper bound
    assert "learning_rate" not in prop.changes  # already at its lower bound
    assert "bound" in prop.rationale
    assert_valid(node, prop)


def test_plateau_raises_lr_kl_temperature_and_rescales_steps():
    flat = {5: 0.40, 10: 0.402, 15: 0.401, 20: 0.40}
    ms = metrics(flat, grad_norm=lambda s: 0.001, clip_ratio=lambda s: 0.0)
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["learning_rate"] == pytest.approx(2e-5)
    assert prop.changes["kl_coef"] == pytest.approx(0.002)
    assert prop.changes["temperature"] == pytest.approx(1.1)
    assert prop.changes["batch_size"] == 16
    assert "epochs" not in prop.changes and prop.epochs == 1.0
    assert prop.max_steps == 100  # 1 epoch x 50 steps at batch 32, rescaled x32/16
    assert "validation plateau" in prop.diagnosis
    assert {o.metric for o in prop.observations} >= {names.VAL_SCORE, names.GRAD_NORM, names.CLIP_RATIO}
    assert_valid(node, prop)


def test_flat_val_with_active_updates_is_convergence_not_plateau():
    ms = metrics({5: 0.40, 10: 0.402, 15: 0.401, 20: 0.40})
    diag = diagnose(ms)
    assert diag.val_flat and not diag.has(PLATEAU)
    prop = AGENT.propose(pctx(ms))
    assert prop.changes == {"learning_rate": pytest.approx(7e-6)}


def test_entropy_collapse_raises_temperature_relaxes_kl_widens_clip():
    ms = metrics(entropy=lambda s: 1.0 if s <= 5 else 0.1)
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["temperature"] == pytest.approx(1.2)
    assert prop.changes["kl_coef"] == pytest.approx(0.0005)
    assert prop.changes["clip_ratio_high"] == pytest.approx(0.28)
    assert "entropy collapse" in prop.diagnosis
    assert_valid(node, prop)


@pytest.mark.parametrize("frac,expected", [(0.2, 1536), (0.5, 2048)])
def test_truncation_raises_response_length(frac, expected):
    ms = metrics(response_length__clip_ratio=lambda s: frac)
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["response_length"] == expected and type(prop.changes["response_length"]) is int
    assert "truncated" in prop.diagnosis
    assert_valid(node, prop)


def test_zero_variance_groups_double_rollouts():
    ms = metrics(reward__zero_std_frac=lambda s: 0.6)
    node = parent_node(ms, rollouts=48)
    agent = HeuristicAgent(thresholds=Thresholds(max_auto_rollouts=128))
    prop = agent.propose(pctx(ms, node))
    assert prop.changes["rollouts"] == 64  # 96 clamped to the bound
    assert "zero-variance" in prop.diagnosis
    assert_valid(node, prop)


def test_healthy_improving_continues_with_more_epochs():
    ms = metrics()
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes == {"epochs": 1.5}
    assert prop.epochs == 1.5 and prop.max_steps == 75
    assert prop.diagnosis.startswith("Healthy run")
    assert_valid(node, prop)


def test_several_patterns_combine_into_one_transition():
    ms = metrics({5: 0.40, 10: 0.402, 15: 0.401, 20: 0.40}, kl=lambda s: 0.002 if s <= 10 else 0.03,
                 grad_norm=lambda s: 0.001, response_length__clip_ratio=lambda s: 0.25)
    diag = diagnose(ms)
    assert diag.has(KL_SPIKE) and diag.has(PLATEAU)
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    # KL spike outranks the plateau on learning_rate (opposite directions); both raise kl_coef.
    assert prop.changes["learning_rate"] == pytest.approx(5e-6)
    assert prop.changes["kl_coef"] == pytest.approx(0.002)
    assert prop.changes["temperature"] == pytest.approx(1.1)
    assert prop.changes["response_length"] == 1536
    assert "batch_size" not in prop.changes and prop.max_steps == 50  # no noisier batches during a KL spike
    assert len(prop.changes) >= 4
    assert "kl_spike takes precedence over plateau" in prop.rationale
    assert "KL spike" in prop.diagnosis and "plateau" in prop.diagnosis
    assert_valid(node, prop)


SCENARIOS = {
    "healthy": {},
    "kl": {"kl": lambda s: 0.002 if s <= 10 else 0.2},
    "entropy": {"entropy": lambda s: 0.05},
    "trunc": {"response_length__clip_ratio": lambda s: 0.6},
    "zero": {"reward__zero_std_frac": lambda s: 0.9},
    "plateau": {"grad_norm": lambda s: 1e-4, "clip_ratio": lambda s: 0.0},
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("scratch", [False, True])
def test_capacity_never_decreases_and_lora_rank_is_kept(name, scratch):
    val = {5: 0.4, 10: 0.4, 15: 0.4, 20: 0.4} if name == "plateau" else RISING_VAL
    ms = metrics(val, **SCENARIOS[name])
    node = parent_node(ms, response_length=65000, rollouts=63, epochs=2.0, lora_rank=16, batch_size=8)
    prop = AGENT.propose(pctx(ms, node, scratch=scratch))
    child = assert_valid(node, prop, scratch=scratch)
    for key in SPACE.keys_with_role(CAPACITY):
        assert child[key] >= node.hparams[key]
    assert child["lora_rank"] == 16


def test_resume_step_choice():
    assert choose_resume(15, [5, 10, 15, 20]) == 15
    assert choose_resume(12, [5, 10, 15, 20]) == 10
    assert choose_resume(3, [5, 10]) == 10  # nothing at or before: the latest
    assert choose_resume(None, [20, 5]) == 20
    assert choose_resume(15, []) is None
    peak = {5: 0.3, 10: 0.5, 15: 0.45, 20: 0.44}
    ms = metrics(peak)
    node = parent_node(ms)
    assert node.best_step == 10
    assert AGENT.propose(pctx(ms, node)).resume_step == 10
    assert AGENT.propose(pctx(ms, node, ckpts=(4, 8, 16, 20))).resume_step == 8
    node.best_step = None  # falls back to the metrics' best val step
    assert AGENT.propose(pctx(ms, node, ckpts=(10, 20))).resume_step == 10


def test_scratch_proposal_is_a_different_start():
    ms = metrics(response_length__clip_ratio=lambda s: 0.2)
    node = parent_node(ms, node_id=5)
    prop = AGENT.propose(pctx(ms, node, scratch=True))
    assert prop.resume_step is None
    assert prop.changes["learning_rate"] != node.hparams["learning_rate"]
    assert prop.changes["temperature"] != node.hparams["temperature"]
    assert prop.changes["kl_coef"] != node.hparams["kl_coef"]
    assert prop.changes["response_length"] == 1536  # capacity fix of the best path is kept
    lr_ratio = prop.changes["learning_rate"] / node.hparams["learning_rate"]
    assert 10 ** 0.3 * 0.99 <= max(lr_ratio, 1 / lr_ratio) <= 10 ** 0.8 * 1.01
    assert "scratch" in prop.rationale
    assert_valid(node, prop, scratch=True)
    again = HeuristicAgent(seed=0).propose(pctx(ms, parent_node(ms, node_id=5), scratch=True))
    assert again.changes == prop.changes  # deterministic in seed + parent id
    other = HeuristicAgent(seed=0).propose(pctx(ms, parent_node(ms, node_id=6), scratch=True))
    assert other.changes != prop.changes


def test_max_steps_budget():
    assert phase_max_steps(1.0, 50, 200) == 50
    assert phase_max_steps(1.5, 50, 200) == 75
    assert phase_max_steps(5.0, 50, 200) == 200
    assert phase_max_steps(0.001, 50, 200) == 1
    assert phase_max_steps(1.0, 50, 200, parent_batch=32, new_batch=64) == 25
    assert phase_max_steps(1.0, 50, 200, parent_batch=32, new_batch=16) == 100
    ms = metrics()
    node = parent_node(ms, epochs=3.0)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes["epochs"] == 4.5 and prop.max_steps == 200  # 225 capped


def test_missing_metrics_still_give_a_valid_proposal():
    ms = MetricSeries([{names.STEP: s, names.REWARD_MEAN: 0.1 * s} for s in STEPS])
    node = parent_node(ms)
    prop = AGENT.propose(pctx(ms, node))
    assert prop.changes == {} and prop.observations == [] and prop.resume_step == 20
    assert prop.max_steps == 50
    assert_valid(node, prop)
    ms = metrics(kl=None, entropy=None)  # val but no kl / entropy
    prop = AGENT.propose(pctx(ms))
    assert {o.metric for o in prop.observations} == {names.VAL_SCORE}
    prop = AGENT.propose(pctx(MetricSeries([])))
    assert prop.changes == {} and prop.resume_step == 20


# ---- early stopper --------------------------------------------------------------------------
def incumbent(best=0.6) -> Node:
    return Node(id=1, parent=0, kind=NodeKind.EVOLVE, hparams=SPACE.defaults(), status=NodeStatus.COMPLETED,
                best_val=best, best_step=20)


def sctx(val, *, inc=incumbent(), steps_left=20, **overrides) -> StopContext:
    ms = metrics(val, **overrides)
    running = Node(id=9, parent=1, kind=NodeKind.EVOLVE, hparams=SPACE.defaults(), status=NodeStatus.RUNNING)
    return StopContext(node=running, metrics=ms, incumbent=inc, incumbent_metrics=None, steps_left=steps_left,
                       budget_left=3)


def test_stop_dominated_run():
    d = AGENT.should_stop(sctx({5: 0.30, 10: 0.31, 15: 0.31, 20: 0.32}))
    assert d.stop and d.reason.startswith("STOP") and "0.32" in d.reason and "0.6" in d.reason


def test_continue_promising_run():
    d = AGENT.should_stop(sctx({5: 0.30, 10: 0.40, 15: 0.50, 20: 0.55}, steps_left=50))
    assert not d.stop and d.reason.startswith("CONTINUE") and "0.55" in d.reason
    d = AGENT.should_stop(sctx({5: 0.30, 10: 0.59, 15: 0.59, 20: 0.59}))  # within the margin
    assert not d.stop
    d = AGENT.should_stop(sctx({5: 0.30, 10: 0.70}))
    assert not d.stop and "ahead" in d.reason


def test_continue_without_incumbent_or_enough_points():
    assert not AGENT.should_stop(sctx({5: 0.1, 10: 0.1}, inc=None)).stop
    d = AGENT.should_stop(sctx({20: 0.1}))
    assert not d.stop and "1 validation point" in d.reason
    d = AGENT.should_stop(sctx({5: 0.1, 10: 0.1}, inc=incumbent(best=None)))
    assert not d.stop


def test_stop_ignores_non_finite_side_metrics():
    d = AGENT.should_stop(sctx({5: 0.5, 10: 0.62}, **{"val/empty_subtask": lambda s: math.nan}))
    assert not d.stop


def test_stop_on_divergence():
    d = AGENT.should_stop(sctx({5: 0.5, 10: 0.55}, kl=lambda s: math.nan if s >= 12 else 0.002))
    assert d.stop and "kl=nan at step 12" in d.reason
    d = AGENT.should_stop(sctx({5: 0.5, 10: 0.62, 15: 0.40, 20: 0.30}, kl=lambda s: 0.002 if s <= 10 else 0.2))
    assert d.stop and "collapsed" in d.reason and "0.62" in d.reason and "0.3" in d.reason


# ---- error analyzer -------------------------------------------------------------------------
def ectx(error: str, log: str = "", ms: MetricSeries | None = None, **hp) -> ErrorContext:
    node = Node(id=4, parent=1, kind=NodeKind.EVOLVE, hparams={**SPACE.defaults(), **hp}, status=NodeStatus.FAILED)
    return ErrorContext(node=node, error=error, log_tail=log, space=SPACE, metrics=ms or MetricSeries([]))


def test_oom_halves_batch_then_rollouts_then_length():
    fix = AGENT.analyze_error(ectx("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert fix.fixable and fix.changes == {"batch_size": 16} and fix.agent == "heuristic"
    assert "Out of memory" in fix.diagnosis
    fix = AGENT.analyze_error(ectx("phase died", log="... OOM killer ...", batch_size=1, rollouts=8))
    assert fix.fixable and fix.changes == {"rollouts": 4} and "capacity" in fix.rationale
    fix = AGENT.analyze_error(ectx("RuntimeError: CUDA out of memory", batch_size=1, rollouts=2, response_length=1000))
    assert fix.fixable and fix.changes == {"response_length": 500}
    fix = AGENT.analyze_error(ectx("CUDA out of memory", batch_size=1, rollouts=2, response_length=8))
    assert not fix.fixable


def test_nan_halves_lr_and_tightens_grad_clip():
    fix = AGENT.analyze_error(ectx("ValueError: loss is nan at step 37"))
    assert fix.fixable and fix.changes == {"learning_rate": pytest.approx(5e-6), "grad_clip": 0.5}
    fix = AGENT.analyze_error(ectx("RuntimeError: non-finite loss", grad_clip=0.4, learning_rate=2e-5))
    assert fix.changes == {"learning_rate": pytest.approx(1e-5), "grad_clip": pytest.approx(0.2)}
    ms = MetricSeries([{names.STEP: 1, "loss": 0.3}, {names.STEP: 2, "loss": math.inf}])
    fix = AGENT.analyze_error(ectx("phase exited with code 1", ms=ms))
    assert fix.fixable and "loss=inf at step 2" in fix.diagnosis


def test_unrecognised_error_is_unfixable():
    err = "Traceback (most recent call last):\n  File x.py\nFileNotFoundError: data/train.jsonl"
    fix = AGENT.analyze_error(ectx(err))
    assert not fix.fixable and fix.changes == {}
    assert "FileNotFoundError: data/train.jsonl" in fix.diagnosis and fix.agent == "heuristic"


def test_thresholds_are_configurable():
    ms = metrics(FLAT_VAL, kl=lambda s: 0.002 if s <= 10 else 0.015)  # 3x: below the default 4x
    assert not diagnose(ms).has(KL_SPIKE)
    assert diagnose(ms, Thresholds(kl_rise=2.5)).has(KL_SPIKE)


def test_steady_kl_ramp_from_zero_is_not_a_spike():
    # Real GRPO: kl starts at 0 (policy == reference) and ramps up with small-batch noise.
    noise = [0.0, 0.01, -0.008, 0.012, -0.01, 0.006, -0.004, 0.009, -0.012, 0.003]
    ms = metrics(kl=lambda s: max(0.0, 0.1 * (s - 1) / 19 + noise[s % 10]))
    prop = AGENT.propose(pctx(ms))
    assert "KL spike" not in prop.diagnosis
    assert "kl_coef" not in prop.changes or prop.changes["kl_coef"] <= 0.001
    # the same rise arriving as a jump late in the phase is one
    jump = metrics(FLAT_VAL, kl=lambda s: 0.004 if s <= 15 else 0.1)
    assert "KL spike" in AGENT.propose(pctx(jump)).diagnosis


@pytest.mark.parametrize("val, spike", [
    (RISING_VAL, False),  # gained and held its best: the policy learning
    (FLAT_VAL, True),  # no gain alongside the rise (ChemCoT phase 3, §4.3.1)
    ({5: 0.30, 10: 0.45, 15: 0.40, 20: 0.36}, True),  # gained, then fell from its best while KL climbed
    ({5: 0.50, 10: 0.45, 15: 0.42, 20: 0.40}, True),  # falling throughout
])
def test_a_kl_rise_is_a_spike_only_without_a_held_validation_gain(val, spike):
    # The tree runs' root: a fresh adapter's KL climbs from 0 in the first steps, as sudden as a blow-up.
    ms = metrics(val, kl=lambda s: min(0.1, 0.01 * s))
    diag = diagnose(ms)
    assert diag.has(KL_SPIKE) is spike
    prop = AGENT.propose(pctx(ms))
    assert ("learning_rate" in prop.changes and prop.changes["learning_rate"] < 1e-5) is spike
    if not spike:
        kl_obs = [o for o in prop.observations if o.metric == names.KL]
        assert kl_obs and "val/score rose alongside it (0.3 -> best 0.48" in kl_obs[0].claim
        assert check_observation(kl_obs[0], ms).verdict == SUPPORTED


def test_rollouts_are_not_doubled_past_the_cost_cap():
    ms = metrics(reward__zero_std_frac=lambda s: 0.6)
    assert AGENT.propose(pctx(ms, parent_node(ms, rollouts=8))).changes["rollouts"] == 16
    prop = AGENT.propose(pctx(ms, parent_node(ms, rollouts=16)))
    assert "rollouts" not in prop.changes and "cost cap (16)" in prop.rationale


def test_the_agent_leaves_parameters_the_trainer_ignores_alone():
    inert = SPACE.with_inert({"clip_ratio_high": "ignored by this trainer"})
    ms = metrics(entropy=lambda s: 1.0 if s <= 5 else 0.1)  # entropy collapse: would widen clip_ratio_high
    node = parent_node(ms)
    ctx = pctx(ms, node)
    assert "clip_ratio_high" in AGENT.propose(ctx).changes
    ctx.space = inert
    prop = AGENT.propose(ctx)
    assert "clip_ratio_high" not in prop.changes and prop.changes["temperature"] == pytest.approx(1.2)

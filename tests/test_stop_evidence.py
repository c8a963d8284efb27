"""The early stopper's evidence and rule (metrics/stop_evidence.py), its outcomes (search/stop_outcomes.py), the fixed
val slice (tasks/val_slice.py) and the TRL phase's evaluation plan (trainers/trl/eval_plan.py), against values worked
out by hand."""

import math
from collections import Counter

import pytest

from llmzero.metrics.stop_evidence import best_until, eval_noise, gather, judge, late_rise, trend
from llmzero.search.stop_outcomes import settle_outcomes
from llmzero.tasks.base import Example
from llmzero.tasks.val_slice import stratified_slice
from llmzero.trainers.trl.eval_plan import EvalPlan
from llmzero.tree import Node, NodeKind, NodeStatus, Tree


def test_noise_from_second_differences():
    # a straight line has no noise at all
    sigma, n = eval_noise([[(5 * i, 0.1 + 0.01 * i) for i in range(8)]])
    assert n == 6 and sigma == pytest.approx(0.0, abs=1e-15)
    # line + (+d, -d, +d, ...): every second difference is ±4d, so σ = 1.4826 · 4d / √6
    d = 0.01
    curve = [(5 * i, 0.3 + 0.002 * i + (d if i % 2 else -d)) for i in range(6)]
    sigma, n = eval_noise([curve, [(1, 0.5)]])
    assert n == 4 and sigma == pytest.approx(1.4826 * 4 * d / math.sqrt(6))
    # too few differences: no estimate
    assert eval_noise([[(1, 0.1), (2, 0.2), (3, 0.2)]]) == (None, 1)
    # non-finite points are dropped before differencing
    assert eval_noise([[(1, 0.1), (2, float("nan")), (3, 0.1), (4, 0.1), (5, 0.1), (6, 0.1), (7, 0.1)]])[0] == 0.0


def test_trend_level_slope_and_standard_error():
    # points (10, .5) (20, .6) (30, .7): slope .01, level .7 at step 30, Sxx = 200, se = σ/√200
    level, slope, se = trend([(10, 0.5), (20, 0.6), (30, 0.7)], sigma=0.02)
    assert (level, slope) == pytest.approx((0.7, 0.01)) and se == pytest.approx(0.02 / math.sqrt(200))
    # only the last `window` points count
    level, slope, _ = trend([(0, 9.0), (10, 0.5), (20, 0.5)], sigma=0.02, window=2)
    assert (level, slope) == pytest.approx((0.5, 0.0))
    assert best_until([(5, 0.2), (10, 0.4), (15, 0.3)], 12) == 0.4 and best_until([(5, 0.2)], 4) is None


def test_late_rise_is_the_rise_beyond_the_trend_then():
    # flat at .5 for steps 10..40 (share .4 of 100 steps), then five evaluations at .6: the trend at step 40 was flat
    # (gain 0), the running mean of 5 after reaches .6, so the late rise is .1
    curve = [(s, 0.5) for s in (10, 20, 30, 40)] + [(s, 0.6) for s in (50, 60, 70, 80, 90)]
    assert late_rise(curve, 0.4, 100, sigma=0.01) == pytest.approx(0.1)
    # one lucky evaluation is averaged away: means of 5 over (.5 .5 .5 .5 .55) top out at .51
    lucky = [(s, 0.5) for s in (10, 20, 30, 40, 50, 60, 70, 80)] + [(90, 0.55)]
    assert late_rise(lucky, 0.4, 100, sigma=0.01) == pytest.approx(0.01)
    assert late_rise(curve, 0.05, 100, sigma=0.01) is None  # fewer than two evaluations by then


def evidence(curve, *, inc_best=0.6, inc_path=None, step=None, max_steps=100, comparable=(), offset=0):
    step = step if step is not None else curve[-1][0]
    return gather(curve=curve, step=step, global_offset=offset, max_steps=max_steps, iterations_left=3,
                  incumbent=1, incumbent_best=inc_best, incumbent_path=inc_path, noise_curves=[curve],
                  comparable=comparable, noise_prior=0.02, noise_floor=0.005, units=2.0)


def test_a_flat_phase_below_the_incumbent_is_stopped_with_its_numbers():
    flat = [(s, 0.55 + (0.004 if s % 20 else -0.004)) for s in range(10, 70, 10)]  # .554 .546 .554 ...
    ev = evidence(flat)
    assert ev.noise == pytest.approx(1.4826 * 0.016 / math.sqrt(6))  # |d2| = .016 everywhere: σ ≈ .0097
    # the last five (.546 .554 .546 .554 .546) fit a flat line at their mean .5492
    assert ev.trend_gain == 0.0 and ev.late_rise == 0.0 and ev.level == pytest.approx(0.5492)
    # reach .5492 + 2σ/√5 (.0087) = .558 < .6: stop
    stop, reason = judge(ev)
    assert stop and reason.startswith("STOP: dominated") and "0.6" in reason
    d = ev.to_dict()
    assert d["gap"] == pytest.approx(0.6 - 0.554) and d["reach"] == pytest.approx(ev.level)


def test_a_tie_within_noise_a_rising_phase_and_a_phase_ahead_run_on():
    tie = [(s, 0.595 + (0.004 if s % 20 else -0.004)) for s in range(10, 70, 10)]
    assert not judge(evidence(tie))[0]  # reach .595 + .0087 ≥ .6
    rising = [(s, 0.3 + 0.004 * s) for s in range(10, 60, 10)]  # .34 .. .5, + .004/step over 50 steps left
    stop, reason = judge(evidence(rising))
    assert not stop and "its trend" in reason
    ahead = [(10, 0.5), (20, 0.7), (30, 0.65)]
    stop, reason = judge(evidence(ahead))
    assert not stop and "ahead of the incumbent" in reason


def test_a_phase_ahead_but_past_its_peak_is_stopped():
    # a lucky .66 at step 10, then flat near .60 with nothing rising: its best checkpoint is kept, more steps are
    # not going to get back to it. The last five (.61 .59 .61 .59 .60) fit a line sloping -.0002/step to .596 at step
    # 60; a falling slope adds nothing, so back to peak is .596, and .596 + 2σ/√5 < .66
    peaked = [(10, 0.66), (20, 0.61), (30, 0.59), (40, 0.61), (50, 0.59), (60, 0.60)]
    ev = evidence(peaked, inc_best=0.625)
    assert ev.gap < 0 and ev.level == pytest.approx(0.596) and ev.back_to_peak == pytest.approx(ev.level)
    stop, reason = judge(ev)
    assert stop and "past its own peak" in reason and "step 10" in reason
    # the same phase still climbing at face value keeps its lead
    climbing = [(10, 0.60), (20, 0.62), (30, 0.63), (40, 0.64), (50, 0.65), (60, 0.66)]
    assert not judge(evidence(climbing, inc_best=0.625))[0]


def test_late_risers_in_the_tree_keep_a_flat_phase_running():
    flat = [(s, 0.5) for s in range(10, 50, 10)] + [(50, 0.5)]
    assert judge(evidence(flat, max_steps=100))[0]
    riser = [(s, 0.5) for s in range(10, 60, 10)] + [(s, 0.65) for s in range(60, 110, 10)]
    ev = evidence(flat, max_steps=100, comparable=[(riser, 100)])
    assert ev.late_rise == pytest.approx(0.15) and ev.late_risers == 1 and ev.comparable == 1
    stop, reason = judge(ev)
    assert not stop and "late risers" in reason


def test_keeping_pace_with_the_incumbents_own_strategy():
    # the incumbent's strategy was at .40 at global step 30 and .60 by global step 100; the running phase is at
    # .41 at step 30 with 70 steps left: at that pace it ends near .61
    inc_path = [(10, 0.3), (30, 0.40), (60, 0.5), (100, 0.6)]
    slow = [(10, 0.41), (20, 0.41), (30, 0.41)]
    ev = evidence(slow, inc_path=inc_path)
    assert ev.incumbent_then == 0.40 and ev.incumbent_at_end == 0.6 and ev.keeps_pace
    assert ev.pace_reach == pytest.approx(0.61)
    stop, reason = judge(ev)
    assert not stop and "keeping pace" in reason
    lagging = [(10, 0.2), (20, 0.2), (30, 0.2)]
    assert not evidence(lagging, inc_path=inc_path).keeps_pace and judge(evidence(lagging, inc_path=inc_path))[0]


def test_no_incumbent_and_the_noise_prior():
    ev = evidence([(10, 0.2), (20, 0.3)], inc_best=None)
    assert ev.noise == 0.02 and "noise_prior" in ev.noise_from
    assert judge(ev) == (False, "CONTINUE: no incumbent with a validation score to compare against.")
    assert "σ = 0.02" in ev.text() and gather(curve=[], step=0, global_offset=0, max_steps=1, iterations_left=0,
                                              incumbent=None, incumbent_best=None, incumbent_path=None,
                                              noise_curves=[], comparable=[], noise_prior=0.02, noise_floor=0.0,
                                              units=2.0) is None


def node(i, parent, status=NodeStatus.COMPLETED, best=None, max_steps=100, steps=100, stop_reason=""):
    return Node(id=i, parent=parent, kind=NodeKind.EVOLVE, hparams={}, status=status, best_val=best,
                max_steps=max_steps, steps_done=steps, stop_reason=stop_reason, resume_from=parent, resume_step=10)


def test_outcomes_of_continue_and_stop_decisions():
    tree = Tree()
    tree.add(node(0, None, best=0.6))
    ran = tree.add(node(1, 0, best=0.7))
    ran.stop_checks = [{"step": 40, "stop": False, "evidence": {"incumbent_best": 0.55}, "outcome": None}]
    stopped = tree.add(node(2, 0, status=NodeStatus.EARLY_STOPPED, best=0.5, steps=40, stop_reason="STOP: x"))
    stopped.stop_checks = [{"step": 40, "stop": True, "evidence": {"level": 0.5, "incumbent_best": 0.6,
                                                                   "noise": 0.01, "trend_gain": 0.0}}]
    # sibling 1 was flat at .5 to step 40 of 100, then rose to .58: +.08 beyond its flat trend
    curves = {1: [(10, 0.5), (20, 0.5), (30, 0.5), (40, 0.5)] + [(s, 0.58) for s in (50, 60, 70, 80, 90)]}
    assert settle_outcomes(tree, lambda n: curves.get(n.id, [])) == 2
    out = ran.stop_checks[0]["outcome"]
    # read on the in-flight curve, as the decision was (its best .58), not the whole split's best_val (.7)
    assert out["beat_incumbent"] is True and out["final_best"] == 0.58 and "ran 60 more steps" in out["text"]
    out = stopped.stop_checks[0]["outcome"]
    assert out["known"] and out["estimated_best"] == pytest.approx(0.58) and out["would_have_beaten"] is False
    assert settle_outcomes(tree, lambda n: curves.get(n.id, [])) == 0  # nothing new to tell
    lonely = Tree()
    lonely.add(node(0, None, best=0.6))
    alone = lonely.add(node(1, 0, status=NodeStatus.EARLY_STOPPED, best=0.5, steps=40, stop_reason="STOP"))
    alone.stop_checks = [{"step": 40, "stop": True, "evidence": {"level": 0.5, "incumbent_best": 0.6}}]
    settle_outcomes(lonely, lambda n: [])
    assert alone.stop_checks[0]["outcome"] == {"known": False, "text": "unknown: no sibling of this phase ran to the end"}


def test_the_val_slice_is_fixed_stratified_and_ordered():
    val = [Example(f"p{i}", "a", "add" if i < 150 else "mul" if i < 250 else "rare") for i in range(256)]
    got = stratified_slice(val, 64, seed=3)
    assert len(got) == 64 and got == stratified_slice(val, 64, seed=3) != stratified_slice(val, 64, seed=4)
    # shares 150/256, 100/256, 6/256 of 64 = 37.5, 25, 1.5 -> 37 or 38, 25, 1 or 2 (largest remainders)
    counts = Counter(e.subtask for e in got)
    assert counts["mul"] == 25 and counts["add"] + counts["rare"] == 39 and counts["rare"] >= 1
    assert [int(e.prompt[1:]) for e in got] == sorted(int(e.prompt[1:]) for e in got)
    assert stratified_slice(val, 0, seed=0) == val and stratified_slice(val, 300, seed=0) == val
    few = [Example("a", "1", "x")] + [Example(f"b{i}", "1", "y") for i in range(99)]
    assert Counter(e.subtask for e in stratified_slice(few, 10, seed=0)) == {"x": 1, "y": 9}


def test_eval_plan_scores_the_whole_split_only_for_a_possible_best():
    plan = EvalPlan(eval_every=5, save_every=25, slice_size=64, full_size=256)
    assert plan.sliced and plan.evaluates(10, False) and not plan.evaluates(11, False) and plan.evaluates(11, True)
    assert plan.may_be_best(0.4)  # nothing scored yet
    assert not plan.may_be_best(0.4) and not plan.may_be_best(0.3)  # a tie or less on the same prompts: no
    assert plan.may_be_best(0.45) and plan.best_slice == 0.45
    assert not plan.may_be_best(float("nan")) and plan.best_slice == 0.45
    assert plan.take_full(0.5) and not plan.take_full(0.5) and plan.best_full == 0.5
    assert plan.saves(7, False, True) and plan.saves(9, True, False) and plan.saves(25, False, False)
    assert not plan.saves(10, False, False)
    assert not EvalPlan(eval_every=5, save_every=25, slice_size=256, full_size=256).sliced

"""UCT math checked against values recomputed by hand from the paper's eqs. 5-8 (Appendix D.2-D.3).

Hand computations (T=0.3, C=1.414, w_f=0.5, w_e=0.3, o_f=2):
  f_T(0.5)  = (e^{0.5/0.3} - 1) / (e^{1/0.3} - 1) = 4.29449 / 27.03162 = 0.158869
  f_T(0.75) = (e^{2.5} - 1) / (e^{3.3333} - 1)    = 11.18249 / 27.03162 = 0.413682
  eq. 8 with v_val=3, v_fail=4, v_early=1, v_total=8, s̄=0.5:
        3/8 * 0.158869 - 0.5 * (4-2)/8 - 0.3 * 1/8 = 0.059576 - 0.125 - 0.0375 = -0.102924
  eq. 5 with Q=0.2, N(p)=10, N(c)=4: 0.2 + 1.414 * sqrt(ln 10 / 4) = 0.2 + 1.414 * 0.758714 = 1.272821
  eq. 6 with ŝ_p=1, N(p)=10, k=2:  N_fair = 10/3; 1 + 1.414 * sqrt(ln 10 / 3.3333) = 1 + 1.414 * 0.831130 = 2.175217
"""

import math

import pytest

from llmzero.search.uct import (
    UCTParams,
    exploitation,
    exploration,
    fair_visits,
    normalise,
    shape,
    should_expand,
    uct_child,
    uct_virtual,
)


def test_min_max_normalisation_eq7():
    assert normalise(0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert normalise(0.4, 0.4, 0.8) == 0.0
    assert normalise(0.8, 0.4, 0.8) == 1.0
    # empty range: every score ties, the neutral midpoint is used
    assert normalise(0.7, 0.7, 0.7) == 0.5


def test_exponential_shaping_eq7():
    assert shape(0.0, 0.3) == 0.0
    assert shape(1.0, 0.3) == pytest.approx(1.0)
    assert shape(0.5, 0.3) == pytest.approx(0.158869, abs=1e-6)
    assert shape(0.75, 0.3) == pytest.approx(0.413682, abs=1e-6)
    # convex: the top of the range is rewarded more than linearly
    assert shape(0.5, 0.3) < 0.5 < shape(0.9, 0.3) + 0.3


def test_exploitation_eq8_with_penalties():
    q = exploitation(v_val=3, v_fail=4, v_early=1, v_total=8, mean_norm_score=0.5)
    assert q == pytest.approx(-0.102924, abs=1e-6)


def test_first_failures_are_forgiven_eq8():
    # two failures are forgiven (o_f = 2): no penalty; the third costs w_f / v_total
    assert exploitation(1, 2, 0, 3, 1.0) == pytest.approx(1 / 3)
    assert exploitation(1, 3, 0, 4, 1.0) == pytest.approx(1 / 4 - 0.5 * 1 / 4)


def test_early_stop_penalty_eq8():
    # one validated early stop out of one visit: f_T(1) - w_e = 1 - 0.3
    assert exploitation(1, 0, 1, 1, 1.0) == pytest.approx(0.7)


def test_uct_child_eq5():
    assert uct_child(0.2, n_parent=10, n_child=4) == pytest.approx(1.272821, abs=1e-6)
    assert uct_child(0.2, n_parent=1, n_child=1) == pytest.approx(0.2)  # ln 1 = 0
    assert uct_child(0.2, n_parent=5, n_child=0) == math.inf


def test_virtual_child_eq6_fair_share():
    assert fair_visits(10, 2) == pytest.approx(10 / 3)
    assert uct_virtual(1.0, n_parent=10, k=2) == pytest.approx(2.175217, abs=1e-6)
    # Q_prior is f_T(ŝ_p): a parent at the bottom of the range gets no prior
    assert uct_virtual(0.0, n_parent=10, k=2) == pytest.approx(1.175217, abs=1e-6)


def test_expand_rule_d3():
    assert should_expand(2.0, [1.5, 1.9], k=1, k_max=2)
    assert not should_expand(1.0, [1.5], k=1, k_max=2)
    assert not should_expand(5.0, [1.5, 1.9], k=2, k_max=2)  # branching limit reached
    assert should_expand(0.0, [], k=0, k_max=2)


def test_params_defaults_are_appendix_b6():
    p = UCTParams()
    assert (p.c, p.temperature, p.w_fail, p.w_early, p.fail_forgiven) == (1.414, 0.3, 0.5, 0.3, 2)
    assert exploration(math.e, 1, 2.0) == pytest.approx(2.0)

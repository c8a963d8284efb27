"""UCT with scale-invariant scoring and virtual-child competition (paper Appendix D.2).

Pure functions only: every quantity here is recomputable by hand from eqs. 5-8, and the
tests do exactly that. Which visits count as what is read off the tree by visits.py.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..config.schema import UCTParams  # C, T, w_f, w_e, o_f with the Appendix B.6 defaults

__all__ = ["UCTParams", "exploitation", "exploration", "fair_visits", "normalise", "shape", "should_expand",
           "uct_child", "uct_virtual"]


def normalise(score: float, s_min: float, s_max: float) -> float:
    """Min-max normalisation, eq. 7 (left).

    When every validated score is equal the range is empty; we return the neutral
    midpoint 0.5 so no node is favoured or punished for a tie.
    """
    if s_max <= s_min:
        return 0.5
    return min(1.0, max(0.0, (score - s_min) / (s_max - s_min)))


def shape(s_hat: float, temperature: float) -> float:
    """Exponential shaping f_T(ŝ) = (e^{ŝ/T} - 1) / (e^{1/T} - 1), eq. 7 (right).

    Maps [0,1] onto [0,1] convexly, so differences near the best score weigh more.
    """
    return math.expm1(s_hat / temperature) / math.expm1(1.0 / temperature)


def exploitation(
    v_val: int,
    v_fail: int,
    v_early: int,
    v_total: int,
    mean_norm_score: float,
    params: UCTParams | None = None,
) -> float:
    """Q(c), eq. 8: validated share times shaped mean score, minus failure and early-stop penalties.

    `mean_norm_score` is s̄_c, the mean of the normalised scores of c's validated subtree.
    The first o_f failures are forgiven.
    """
    params = params or UCTParams()
    if v_total <= 0:
        return 0.0
    q = (v_val / v_total) * shape(mean_norm_score, params.temperature) if v_val > 0 else 0.0
    q -= params.w_fail * max(0, v_fail - params.fail_forgiven) / v_total
    q -= params.w_early * v_early / v_total
    return q


def exploration(n_parent: float, n_child: float, c: float) -> float:
    """C * sqrt(ln N(p) / N(c)), the bonus shared by eqs. 5 and 6; an unvisited child gets +inf."""
    if n_child <= 0:
        return math.inf
    if n_parent <= 1:
        return 0.0  # ln 1 = 0
    return c * math.sqrt(math.log(n_parent) / n_child)


def uct_child(q: float, n_parent: int, n_child: int, params: UCTParams | None = None) -> float:
    """UCT(c_i) = Q(c_i) + C sqrt(ln N(p) / N(c_i)), eq. 5."""
    return q + exploration(n_parent, n_child, (params or UCTParams()).c)


def fair_visits(n_parent: int, k: int) -> float:
    """N_fair = N(p) / (k+1): the virtual child's fair share of the parent's visits (eq. 6)."""
    return n_parent / (k + 1)


def uct_virtual(parent_norm_score: float, n_parent: int, k: int, params: UCTParams | None = None) -> float:
    """UCT(new) = Q_prior(p) + C sqrt(ln N(p) / N_fair), eq. 6, with Q_prior = f_T(ŝ_p) (D.3 step 2)."""
    params = params or UCTParams()
    q_prior = shape(parent_norm_score, params.temperature)
    return q_prior + exploration(n_parent, fair_visits(n_parent, k), params.c)


def should_expand(uct_new: float, child_ucts: Sequence[float], k: int, k_max: int) -> bool:
    """D.3 step 3: expand when the virtual child beats every existing child and k < k_max."""
    if k >= k_max:
        return False
    return not child_ucts or uct_new > max(child_ucts)

"""Tree bookkeeping and selection (§3.2, §3.3, Appendix D.3) on hand-built trees."""

import pytest
from helpers import add

from llmzero.config.schema import TreeLimits, UCTParams
from llmzero.search.selection import needs_scratch, scratch_ratio, select
from llmzero.search.visits import visit_stats
from llmzero.tree import NodeKind, NodeStatus, Tree, journal

LIM = TreeLimits()
P = UCTParams()


def test_empty_tree_starts_with_root():
    assert select(Tree(), LIM, P, 0.2).kind == NodeKind.ROOT


def test_descends_to_better_child_then_expands_it():
    # scores 0.4 / 0.6 / 0.8 -> ŝ = 0, 0.5, 1. At the root N=3, k=2=k_max (no virtual child):
    # UCT(1) = f(0.5) + 1.414 sqrt(ln 3 / 1) = 0.158869 + 1.482080 = 1.640949
    # UCT(2) = f(1)   + 1.482080           = 2.482080 -> descend into 2.
    # At node 2: N=1, no children, virtual child wins by default -> expand 2.
    t = Tree()
    add(t, 0, val=0.4)
    add(t, 1, 0, val=0.6)
    add(t, 2, 0, val=0.8)
    action = select(t, LIM, P, 0.2)
    assert action.kind == NodeKind.EVOLVE and action.node == 2
    root_step = action.trace[0]
    assert root_step["N"] == 3 and root_step["k"] == 2 and "new" not in root_step
    assert root_step["children"]["1"] == pytest.approx(1.640949, abs=1e-5)
    assert root_step["children"]["2"] == pytest.approx(2.482080, abs=1e-5)


def test_virtual_child_wins_when_child_underperforms_parent():
    # root 0.8 (ŝ=1), child 0.4 (ŝ=0); N(root)=2, k=1:
    # UCT(child) = 0 + 1.414 sqrt(ln 2 / 1) = 1.177232; UCT(new) = f(1) + 1.414 sqrt(ln 2 / (2/2)) = 2.177232
    t = Tree()
    add(t, 0, val=0.8)
    add(t, 1, 0, val=0.4)
    action = select(t, LIM, P, 0.2)
    assert action.kind == NodeKind.EVOLVE and action.node == 0
    assert action.trace[0]["new"] == pytest.approx(2.177232, abs=1e-5)
    assert action.trace[0]["children"]["1"] == pytest.approx(1.177232, abs=1e-5)


def test_descends_when_child_beats_parent():
    t = Tree()
    add(t, 0, val=0.4)
    add(t, 1, 0, val=0.8)
    action = select(t, LIM, P, 0.2)
    assert action.trace[0]["new"] == pytest.approx(1.177232, abs=1e-5)  # f(0) + exploration
    assert action.trace[0]["decision"] == "descend:1"
    assert action.kind == NodeKind.EVOLVE and action.node == 1


def test_failed_node_is_debugged():
    t = Tree()
    add(t, 0, val=0.5)
    add(t, 1, 0, status=NodeStatus.FAILED)
    add(t, 2, 0, val=0.5)
    # N(root)=3, k=2: UCT(1) = Q=0 (one failure forgiven) + 1.414 sqrt(ln 3) = 1.482080
    # UCT(2): single validated score range is (0.5, 0.5) -> ŝ = 0.5 -> 0.158869 + 1.482080 -> descend to 2
    a = select(t, LIM, P, 0.2)
    assert a.trace[0]["children"]["1"] == pytest.approx(1.482080, abs=1e-5)
    assert a.node == 2
    t[2].checkpoints = []  # node 2 cannot be expanded any more -> its subtree is terminal
    a = select(t, LIM, P, 0.2)
    assert a.kind == NodeKind.DEBUG and a.node == 1


def test_debug_limits_make_failures_terminal():
    t = Tree()
    add(t, 0, val=0.5, checkpoints=())
    f = add(t, 1, 0, status=NodeStatus.FAILED)
    assert not t.is_terminal(0, LIM)
    f.unfixable = True
    assert t.is_terminal(1, LIM) and t.is_terminal(0, LIM)
    assert select(t, LIM, P, 0.2) is None
    f.unfixable = False
    for i in range(3):  # max 3 debug children, all failing
        add(t, 2 + i, 1, kind=NodeKind.DEBUG, status=NodeStatus.FAILED, debug_of=1, resume_from=0)
        t[2 + i].unfixable = True
    assert not t.can_expand(f, LIM)
    assert t.is_terminal(0, LIM)


def test_debug_depth_limit():
    t = Tree()
    add(t, 0, val=0.5)
    add(t, 1, 0, status=NodeStatus.FAILED)
    prev = 1
    for i in range(2, 7):  # debug depths 1..5
        add(t, i, prev, kind=NodeKind.DEBUG, status=NodeStatus.FAILED, debug_of=prev, resume_from=0)
        prev = i
    assert t.debug_depth(6) == 5
    assert t.debug_depth(2) == 1 and t.debug_depth(1) == 0
    assert not t.can_expand(t[6], LIM)  # depth 5 reached
    assert t.can_expand(t[5], LIM)


def test_successful_debug_is_reparented_and_chain_pruned():
    t = Tree()
    add(t, 0, val=0.5)
    add(t, 1, 0, status=NodeStatus.FAILED)
    add(t, 2, 1, kind=NodeKind.DEBUG, status=NodeStatus.FAILED, debug_of=1, resume_from=0)
    add(t, 4, 1, kind=NodeKind.DEBUG, status=NodeStatus.FAILED, debug_of=1, resume_from=0)
    fixed = add(t, 3, 2, kind=NodeKind.DEBUG, val=0.7, debug_of=2, resume_from=0)
    assert t.debug_chain_origin(3).id == 1
    origin = t.lift_fixed_debug(3)
    assert origin.id == 1
    assert fixed.parent == 0 and fixed.reparented_from == 2
    assert {n.id for n in t if n.pruned} == {1, 2, 4}
    assert [c.id for c in t.children(0)] == [3]  # sibling of the oldest failure, which is gone
    assert [n.id for n in t.strategy_path(3)] == [0, 3]
    assert t.debug_depth(3) == 0
    # the fix takes the failed node's slot: one evolve child of the root
    assert len(t.evolve_children(0)) == 1


def test_terminality_propagates_upward():
    t = Tree()
    add(t, 0, val=0.5)
    add(t, 1, 0, val=0.6, checkpoints=())  # no checkpoint: cannot be expanded
    add(t, 2, 0, val=0.7)
    assert t.is_terminal(1, LIM) and not t.is_terminal(2, LIM) and not t.is_terminal(0, LIM)
    add(t, 3, 2, val=0.7, checkpoints=())
    add(t, 4, 2, val=0.7, checkpoints=())
    assert t.is_terminal(2, LIM)  # fully expanded (k = 2) and all children terminal
    assert t.is_terminal(0, LIM)  # and so is the root
    assert select(t, LIM, P, 0.2) is None


def test_running_nodes_are_not_terminal_and_count_as_visits():
    t = Tree()
    add(t, 0, val=0.5)
    add(t, 1, 0, status=NodeStatus.RUNNING, val=None)
    assert not t.is_terminal(1, LIM)
    stats = visit_stats(t, 0)
    assert stats.v_total == 2 and stats.v_val == 1  # virtual loss: a visit without a score


def test_scratch_injection_ratio():
    t = Tree()
    add(t, 0, val=0.5)
    prev = 0
    for i in range(1, 6):
        add(t, i, prev, val=0.5 + i / 100)
        prev = i
    assert scratch_ratio(t) == (1, 5)  # root counts as from scratch: 1/5 = 0.2, not below ρ_min
    assert not needs_scratch(t, 0.2)
    add(t, 6, 5, val=0.9)
    assert needs_scratch(t, 0.2)  # 1/6 < 0.2
    a = select(t, LIM, P, 0.2)
    assert a.kind == NodeKind.SCRATCH and a.node == 6  # child of the best node
    add(t, 7, 6, kind=NodeKind.SCRATCH, val=0.4)
    assert not needs_scratch(t, 0.2)  # 2/6
    assert len(t.evolve_children(6)) == 0  # does not count against node 6's branching limit
    assert [n.id for n in t.strategy_path(7)] == [7]


def test_early_stopped_scores_count_and_are_penalised():
    t = Tree()
    add(t, 0, val=0.4)
    add(t, 1, 0, status=NodeStatus.EARLY_STOPPED, val=0.8)
    s = visit_stats(t, 1)
    assert (s.v_val, s.v_early, s.v_total) == (1, 1, 1)
    assert t.best_node().id == 1


def test_tree_roundtrip():
    t = Tree(iteration=3)
    add(t, 0, val=0.4)
    add(t, 1, 0, status=NodeStatus.FAILED)
    t[1].error = "boom"
    t2, meta = journal.load(journal.dump(t, {"task": "x"}))
    assert journal.dump(t2) == journal.dump(t) and t2.iteration == 3 and t2.next_id == 2 and meta == {"task": "x"}

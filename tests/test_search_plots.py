"""Whole-search figures (paper Figs 2, 3, 5 and the tree) on hand-built trees."""

import logging
import math
import struct

import pytest

pytest.importorskip("matplotlib")

from helpers import add
from matplotlib.colors import to_hex

from llmzero.hparams.space import (
    CAPACITY,
    OTHER,
    REGULARISATION,
    HParamSpace,
    HParamSpec,
)
from llmzero.reports import search_plots as sp
from llmzero.tree import Cost, NodeKind, NodeStatus, Tree

C, E, F, R = NodeStatus.COMPLETED, NodeStatus.EARLY_STOPPED, NodeStatus.FAILED, NodeStatus.RUNNING

SPACE = HParamSpace({
    "learning_rate": HParamSpec("float", 1e-7, 1e-3, default=1e-5, role=REGULARISATION, log_scale=True),
    "kl_coef": HParamSpec("float", 0.0, 1.0, default=0.001, role=REGULARISATION),
    "response_length": HParamSpec("int", 64, 8192, default=512, role=CAPACITY),
    "lora_rank": HParamSpec("int", 1, 256, default=8, role=CAPACITY, fixed_along_path=True),
    "use_kl": HParamSpec("bool", default=True, role=OTHER),
    "loss": HParamSpec("str", choices=("grpo", "dapo"), default="grpo", role=OTHER),
})
BASE = {"learning_rate": 1e-5, "kl_coef": 0.001, "response_length": 512, "lora_rank": 8, "use_kl": True,
        "loss": "grpo"}


def hp(**kw):
    return {**BASE, **kw}


def _node(t, nid, parent, *, it, status=C, val=None, test=None, gpu=0.0, wall=0.0, fin=None, offset=0,
          steps=10, pruned=False, **kw):
    n = add(t, nid, parent, status=status, val=val, **kw)
    n.iteration, n.test_score, n.pruned = it, test, pruned
    n.cost = Cost(wall_s=wall, gpu_s=gpu)
    n.finished_at = fin if status in NodeStatus.FINISHED else None
    n.global_offset, n.steps_done, n.max_steps = offset, steps if status != R else 3, steps
    return n


def build(gpu=True):
    """0 -> 1 -> 6 is the best strategy (lr up then back down, response_length doubling twice).

    3 failed, its debug 4 failed too, and debug 5 fixed it: 5 was lifted under 1 and 3, 4 pruned.
    Node 2 finishes before node 1 so compute order differs from iteration order.
    """
    g = (lambda h: h * 3600.0) if gpu else (lambda h: 0.0)
    w = (lambda h: h * 7200.0)  # wall time always present; only used when there is no GPU accounting
    t = Tree()
    _node(t, 0, None, it=1, val=0.40, gpu=g(1), wall=w(1), fin=100, hparams=hp())
    _node(t, 1, 0, it=2, val=0.55, test=0.50, gpu=g(2), wall=w(2), fin=200, offset=10,
          hparams=hp(learning_rate=3e-5, response_length=1024))
    _node(t, 2, 0, it=3, status=E, val=0.45, gpu=g(0.5), wall=w(0.5), fin=150, offset=10, steps=4,
          hparams=hp(kl_coef=0.01))
    _node(t, 3, 1, it=4, status=F, gpu=g(0.25), wall=w(0.25), fin=250, pruned=True, hparams=hp(learning_rate=1e-4))
    _node(t, 4, 3, it=5, status=F, gpu=g(0.25), wall=w(0.25), fin=300, pruned=True, kind=NodeKind.DEBUG,
          debug_of=3, resume_from=1, hparams=hp(learning_rate=8e-5))
    lifted = _node(t, 5, 1, it=6, val=0.50, gpu=g(1), wall=w(1), fin=350, kind=NodeKind.DEBUG, debug_of=4,
                   resume_from=1, hparams=hp(learning_rate=5e-5))
    lifted.reparented_from = 4
    _node(t, 6, 1, it=7, val=0.70, test=0.66, gpu=g(2), wall=w(2), fin=400, offset=15,
          hparams=hp(response_length=2048, use_kl=False, loss="dapo"))
    _node(t, 7, 6, it=8, status=E, val=0.60, gpu=g(1), wall=w(1), fin=500, offset=20, hparams=hp())
    _node(t, 8, 2, it=9, status=F, gpu=g(0.5), wall=w(0.5), fin=450, hparams=hp())
    _node(t, 9, 6, it=10, status=R, hparams=hp())
    t.iteration = 10
    return t


def _line(fig, gid):
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(lines) == 1, gid
    return lines[0]


def _png_size(path):
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", raw[16:24])
    return w, h


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y)


# ---- best so far (Figs 5 and 2) ----------------------------------------------------------------------

def test_best_so_far_vs_iteration_is_running_max_in_iteration_order():
    fig_iter, _ = sp._best_so_far_figures(build())
    line = _line(fig_iter, "best_so_far")
    # Validated, unpruned nodes by iteration: 0@1 .40, 1@2 .55, 2@3 .45, 5@6 .50, 6@7 .70, 7@8 .60,
    # then held to the last iteration begun (10).
    _same(line.get_xdata(), [1, 2, 3, 6, 7, 8, 10])
    _same(line.get_ydata(), [0.40, 0.55, 0.55, 0.55, 0.70, 0.70, 0.70])
    assert line.get_drawstyle() == "steps-post"
    # Incumbents' test scores: node 0 has none, then node 1 (.50), then node 6 (.66).
    _same(_line(fig_iter, "test_so_far").get_ydata(), [math.nan, 0.50, 0.50, 0.50, 0.66, 0.66, 0.66])
    # Dots coloured by status: completed in blue, early-stopped in orange.
    ax = fig_iter.axes[0]
    dots = {to_hex(ln.get_color()): list(ln.get_xdata()) for ln in ax.get_lines() if ln.get_linestyle() == "None"}
    assert dots[to_hex("tab:blue")] == [1, 2, 6, 7]
    assert dots[to_hex("tab:orange")] == [3, 8]
    assert ax.get_xlabel() == "search iteration"


def test_best_so_far_vs_gpu_hours_follows_finish_order():
    _, fig = sp._best_so_far_figures(build(gpu=True))
    line = _line(fig, "best_so_far")
    # Finish order 0, 2, 1, 3, 4, 5, 6, 8, 7 with GPU-hours 1, .5, 2, .25, .25, 1, 2, .5, 1.
    _same(line.get_xdata(), [1, 1.5, 3.5, 3.75, 4.0, 5.0, 7.0, 7.5, 8.5])
    _same(line.get_ydata(), [0.40, 0.45, 0.55, 0.55, 0.55, 0.55, 0.70, 0.70, 0.70])
    assert "GPU-hours" in fig.axes[0].get_xlabel() and "wall" not in fig.axes[0].get_xlabel()


def test_best_so_far_without_gpu_accounting_uses_wall_hours():
    _, fig = sp._best_so_far_figures(build(gpu=False))
    line = _line(fig, "best_so_far")
    _same(line.get_xdata(), [2, 3, 7, 7.5, 8, 10, 14, 15, 17])  # wall time is twice the GPU time above
    assert fig.axes[0].get_xlabel() == "cumulative wall-hours (no GPU accounting)"


def test_pruned_scores_do_not_count_and_no_scores_means_no_plot(tmp_path):
    t = build()
    t[4].best_val, t[4].status = 0.99, C  # a pruned node never becomes the incumbent
    fig_iter, _ = sp._best_so_far_figures(t)
    assert max(_line(fig_iter, "best_so_far").get_ydata()) == pytest.approx(0.70)
    empty = Tree()
    _node(empty, 0, None, it=1, status=F, fin=1)
    assert sp.plot_best_so_far(empty, tmp_path / "a.png", tmp_path / "b.png") == (None, None)
    assert not list(tmp_path.iterdir())


def test_plot_best_so_far_writes_pngs(tmp_path):
    a, b = sp.plot_best_so_far(build(), tmp_path / "it.png", tmp_path / "hours.png")
    assert _png_size(a) == (1000, 600) and _png_size(b) == (1000, 600)


# ---- strategy (Fig 3) ------------------------------------------------------------------------------

def test_strategy_has_one_panel_per_changing_numeric_hparam_coloured_by_role():
    t = build()
    path = t.strategy_path(6)
    assert [n.id for n in path] == [0, 1, 6]
    fig = sp._strategy_figure(t, path, SPACE)
    panels = {ax.get_gid()[3:]: ax for ax in fig.axes if (ax.get_gid() or "").startswith("hp:")}
    # kl_coef and lora_rank never change; loss changes but is a string.
    assert list(panels) == ["response_length", "learning_rate", "use_kl"]  # capacity, then regularisation, other
    expect = {"response_length": [512, 1024, 2048], "learning_rate": [1e-5, 3e-5, 1e-5], "use_kl": [1, 1, 0]}
    role_color = {"response_length": "tab:red", "learning_rate": "tab:purple", "use_kl": "dimgrey"}
    for key, ax in panels.items():
        (ln,) = ax.get_lines()
        _same(ln.get_xdata(), [1, 2, 3])
        _same(ln.get_ydata(), expect[key])
        assert to_hex(ln.get_color()) == to_hex(role_color[key])
        assert to_hex(ax.title.get_color()) == to_hex(role_color[key])
    assert panels["learning_rate"].get_yscale() == "log"
    legend_labels = {tx.get_text() for lg in fig.legends for tx in lg.get_texts()}
    assert {"capacity (accumulates)", "regularisation (oscillates)", "other"} <= legend_labels
    top = fig.axes[0]
    _same(_line(fig, "val").get_ydata(), [0.40, 0.55, 0.70])
    _same(_line(fig, "test").get_ydata(), [math.nan, 0.50, 0.66])
    ticks = [tx.get_text() for tx in top.get_xticklabels()]
    assert ticks[0].startswith("#0 root") and "steps 0–10" in ticks[0]
    assert ticks[2].startswith("#6 evolve") and "steps 15–25" in ticks[2]


def test_strategy_without_changes_shows_a_note(tmp_path):
    t = Tree()
    _node(t, 0, None, it=1, val=0.3, hparams=hp())
    _node(t, 1, 0, it=2, val=0.4, hparams=hp(loss="dapo"))
    fig = sp._strategy_figure(t, t.strategy_path(1), SPACE)
    assert not [ax for ax in fig.axes if (ax.get_gid() or "").startswith("hp:")]
    assert any("No numeric hyperparameter changes" in tx.get_text() for ax in fig.axes for tx in ax.texts)
    assert sp.plot_strategy(t, [], SPACE, tmp_path / "s.png") is None
    out = sp.plot_strategy(t, t.strategy_path(1), SPACE, tmp_path / "s.png")
    assert _png_size(out)[0] == 1000


def test_plot_strategy_png(tmp_path):
    t = build()
    w, h = _png_size(sp.plot_strategy(t, t.strategy_path(6), SPACE, tmp_path / "s.png"))
    assert w == 1000 and 500 <= h <= 800


# ---- tree ------------------------------------------------------------------------------------------

def test_layout_centres_parents_over_children():
    pos = sp._layout(build())
    assert {nid: d for nid, (_, d) in pos.items()} == {0: 0, 1: 1, 2: 1, 3: 2, 4: 3, 5: 2, 6: 2, 7: 3, 8: 2, 9: 3}
    # Leaves in DFS order: 4, 5, 7, 9, 8 -> x = 0..4.
    assert [pos[i][0] for i in (4, 5, 7, 9, 8)] == [0, 1, 2, 3, 4]
    assert pos[6][0] == 2.5 and pos[1][0] == pytest.approx((0 + 2.5) / 2) and pos[2][0] == 4


def test_tree_figure_one_marker_per_node_and_bold_best_path():
    t = build()
    fig = sp._tree_figure(t)
    ax = fig.axes[0]
    nodes = [c for c in ax.collections if c.get_gid() == "nodes"]
    assert sum(len(c.get_offsets()) for c in nodes) == len(t) == 10
    pos = sp._layout(t)
    drawn = sorted(tuple(map(float, xy)) for c in nodes for xy in c.get_offsets())
    assert drawn == sorted((float(x), float(y)) for x, y in pos.values())
    (plain,) = [c for c in ax.collections if c.get_gid() == "edges"]
    (bold,) = [c for c in ax.collections if c.get_gid() == "best_edges"]
    assert len(plain.get_segments()) == 9 - 2
    segs = sorted(tuple(map(tuple, s.tolist())) for s in bold.get_segments())
    assert segs == sorted([(pos[0], pos[1]), (pos[1], pos[6])])
    assert min(bold.get_linewidths()) > max(plain.get_linewidths())
    # Pruned nodes fade; failed nodes have the X shape; a colorbar for best val exists.
    assert any(c.get_alpha() == pytest.approx(0.3) for c in nodes)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "best val"


def test_best_path_edges_cross_unlifted_debug_hops():
    t = Tree()
    _node(t, 0, None, it=1, val=0.3)
    _node(t, 1, 0, it=2, status=F, fin=1)
    _node(t, 2, 1, it=3, val=0.6, kind=NodeKind.DEBUG, debug_of=1, resume_from=0)  # not lifted yet
    assert sp._best_path_edges(t) == {(0, 1), (1, 2)}


def test_plot_tree_png_and_empty(tmp_path):
    w, h = _png_size(sp.plot_tree(build(), tmp_path / "t.png"))
    assert w == 1000 and 500 <= h <= 750
    assert sp.plot_tree(Tree(), tmp_path / "none.png") is None


# ---- render all --------------------------------------------------------------------------------

def test_render_search_plots_writes_all(tmp_path):
    out = sp.render_search_plots(build(), tmp_path, SPACE)
    names = ["best_so_far_iteration.png", "best_so_far_compute.png", "strategy.png", "tree.png"]
    assert sorted(out) == sorted(names)
    for name in names:
        assert out[name] == tmp_path / "plots" / name
        _png_size(out[name])
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.endswith(".tmp")]


def test_render_survives_one_failing_plot(tmp_path, monkeypatch, caplog):
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(sp, "_best_so_far_figures", boom)
    with caplog.at_level(logging.WARNING, logger=sp.__name__):
        out = sp.render_search_plots(build(), tmp_path, SPACE)
    assert sorted(out) == ["strategy.png", "tree.png"]
    assert any("best_so_far" in r.getMessage() for r in caplog.records)


def test_render_empty_tree_writes_nothing(tmp_path):
    assert sp.render_search_plots(Tree(), tmp_path, SPACE) == {}

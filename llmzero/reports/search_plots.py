"""Whole-search figures: best-so-far curves (paper Figs 2, 5), the best strategy (Fig 3), the tree.

Same house style as plots.py: object-API figures (no pyplot state), PNGs swapped in atomically.
Each public function returns the written Path, or None when there is nothing to plot; the
`_*_figure(s)` builders return Figures so tests can inspect the plotted data directly.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..hparams.space import CAPACITY, OTHER, REGULARISATION, HParamSpace
from ..tree import Node, NodeStatus, Tree
from ..metrics.plots import DPI, save_figure

log = logging.getLogger(__name__)

WIDTH_IN = 10.0
STATUS_COLOR = {NodeStatus.COMPLETED: "tab:blue", NodeStatus.EARLY_STOPPED: "tab:orange"}
ROLE_COLOR = {CAPACITY: "tab:red", REGULARISATION: "tab:purple", OTHER: "dimgrey"}
ROLE_LABEL = {CAPACITY: "capacity (accumulates)", REGULARISATION: "regularisation (oscillates)", OTHER: "other"}
STATUS_MARKER = {NodeStatus.COMPLETED: "o", NodeStatus.EARLY_STOPPED: "s", NodeStatus.FAILED: "X",
                 NodeStatus.RUNNING: "^", NodeStatus.PENDING: "^"}
BEST_COLOR = "black"
TEST_COLOR = "tab:green"


def _new_figure(height_in: float) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _running_best(nodes: list[Node]) -> tuple[list[float], list[Node | None]]:
    """Running max of best_val over `nodes` (nan before the first score) and the incumbent at each point."""
    ys: list[float] = []
    inc: list[Node | None] = []
    best: Node | None = None
    for n in nodes:
        # Strict > keeps the earlier node on ties, matching Tree.best_node.
        if n.validated and not n.pruned and (best is None or n.best_val > best.best_val):
            best = n
        ys.append(math.nan if best is None else float(best.best_val))
        inc.append(best)
    return ys, inc


def _draw_best(ax, xs: list[float], nodes: list[Node], xlabel: str, tail_x: float | None = None) -> None:
    """Step line of the running best over `nodes` at `xs`, held flat to tail_x when given."""
    ys, inc = _running_best(nodes)
    line_x, line_y = list(xs), list(ys)
    if tail_x is not None and xs and tail_x > xs[-1]:
        line_x.append(tail_x)
        line_y.append(ys[-1])
    ax.plot(line_x, line_y, drawstyle="steps-post", color=BEST_COLOR, lw=1.8, label="best-so-far val",
            gid="best_so_far")
    for status, color in STATUS_COLOR.items():
        pts = [(x, n.best_val) for x, n in zip(xs, nodes) if n.validated and not n.pruned and n.status == status]
        if pts:
            ax.plot(*zip(*pts), ls="none", marker="o", ms=5, color=color, alpha=0.8,
                    label=f"{status.replace('_', '-')} phase val")
    # Label each new incumbent so the curve can be read against the tree figure.
    for i, n in enumerate(inc):
        if n is not None and (i == 0 or inc[i - 1] is not n):
            ax.annotate(f"#{n.id}", (xs[i], ys[i]), xytext=(3, 4), textcoords="offset points", fontsize=7)
    if any(n is not None and n.test_score is not None for n in inc):
        test = [math.nan if n is None or n.test_score is None else float(n.test_score) for n in inc]
        test += test[-1:] * (len(line_x) - len(test))
        ax.plot(line_x, test, drawstyle="steps-post", ls="--", marker=".", color=TEST_COLOR, lw=1.4,
                label="incumbent test score", gid="test_so_far")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("validation score", fontsize=9)
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.tick_params(labelsize=8)
    ax.margins(y=0.12)
    ax.legend(fontsize=8, loc="lower right")


def _best_so_far_figures(tree: Tree) -> tuple[Figure | None, Figure | None]:
    """(vs iteration, vs cumulative compute); either is None when it would be empty."""
    # Same candidates as Tree.best_node, so the curves end at the node the search reports.
    scored = sorted(tree.validated(), key=lambda n: (n.iteration, n.id))
    fig_iter = None
    if scored:
        fig_iter = _new_figure(6.0)
        ax = fig_iter.add_subplot()
        # Held to the last iteration begun, so a search that stopped improving shows its flat tail.
        _draw_best(ax, [float(n.iteration) for n in scored], scored, "search iteration",
                   tail_x=float(tree.iteration))
        ax.set_title(f"Best-so-far validation score vs iteration ({len(scored)} validated phases)", fontsize=10)

    # Failed and pruned phases count here: the compute they burnt is real.
    done = sorted((n for n in tree if n.finished), key=lambda n: (
        n.finished_at is None, n.finished_at or 0.0, n.iteration, n.id))
    fig_comp = None
    if any(n.validated and not n.pruned for n in done):
        if sum(n.cost.gpu_s for n in done) > 0:
            per, unit, xlabel = [n.cost.gpu_s / 3600 for n in done], "GPU-h", "cumulative GPU-hours"
        elif sum(n.cost.wall_s for n in done) > 0:
            per, unit = [n.cost.wall_s / 3600 for n in done], "wall-h"
            xlabel = "cumulative wall-hours (no GPU accounting)"
        else:  # hand-made or legacy trees: still show the order of discovery
            per, unit, xlabel = [1.0] * len(done), "phases", "finished phases (no compute accounting)"
        xs = list(itertools.accumulate(per))
        fig_comp = _new_figure(6.0)
        ax = fig_comp.add_subplot()
        _draw_best(ax, xs, done, xlabel)
        ax.set_title(f"Best-so-far validation score vs compute ({len(done)} finished phases, "
                     f"total {xs[-1]:.3g} {unit})", fontsize=10)
    return fig_iter, fig_comp


def plot_best_so_far(tree: Tree, out_iter: Path, out_hours: Path) -> tuple[Path | None, Path | None]:
    """Paper Fig 5 (vs iteration) to out_iter and Fig 2 (vs GPU- or wall-hours) to out_hours."""
    fig_iter, fig_comp = _best_so_far_figures(tree)
    return (None if fig_iter is None else save_figure(fig_iter, out_iter),
            None if fig_comp is None else save_figure(fig_comp, out_hours))


def _numeric(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _changing_hparams(path: list[Node], space: HParamSpace) -> list[tuple[str, str, list[float]]]:
    """(key, role, per-phase values; nan where unset) for numeric/bool keys that change along the path."""
    keys = sorted({k for n in path for k in n.hparams})
    out = []
    for k in keys:
        raw = [n.hparams.get(k) for n in path]
        if any(v is not None and _numeric(v) is None for v in raw):
            continue  # strings (e.g. a loss type) have no trajectory to draw
        vals = [math.nan if v is None else _numeric(v) for v in raw]
        if len({repr(v) for v in raw}) > 1:
            spec = space.specs.get(k)
            out.append((k, spec.role if spec is not None else OTHER, vals))
    order = {CAPACITY: 0, REGULARISATION: 1, OTHER: 2}
    return sorted(out, key=lambda t: (order.get(t[1], 2), t[0]))


def _phase_label(n: Node) -> str:
    end = n.global_offset + (n.steps_done or n.max_steps)
    return f"#{n.id} {n.kind}\nsteps {n.global_offset}–{end}"


def _strategy_figure(tree: Tree, path: list[Node], space: HParamSpace) -> Figure | None:
    if not path:
        return None
    k = len(path)
    xs = list(range(1, k + 1))
    changing = _changing_hparams(path, space)
    ncols = min(4, max(1, len(changing)))
    nrows = math.ceil(len(changing) / ncols) if changing else 0
    fig = _new_figure(3.6 + (2.0 * nrows if nrows else 0.6))
    grid = fig.add_gridspec(1 + max(nrows, 1), ncols, height_ratios=[1.9] + [1.0] * max(nrows, 1))
    top = fig.add_subplot(grid[0, :])
    vals = [math.nan if n.best_val is None else float(n.best_val) for n in path]
    top.plot(xs, vals, marker="o", color=BEST_COLOR, lw=1.6, label="val (best in phase)", gid="val")
    for x, v in zip(xs, vals):
        if not math.isnan(v):
            top.annotate(f"{v:.3g}", (x, v), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8)
    if any(n.test_score is not None for n in path):
        test = [math.nan if n.test_score is None else float(n.test_score) for n in path]
        top.plot(xs, test, marker="D", ms=5, ls="--", color=TEST_COLOR, lw=1.4, label="test", gid="test")
    top.set_xticks(xs, [_phase_label(n) for n in path], fontsize=8)
    top.set_xlim(0.6, k + 0.4)
    top.set_ylabel("score", fontsize=9)
    top.margins(y=0.2)
    top.grid(True, lw=0.4, alpha=0.5)
    top.tick_params(axis="y", labelsize=8)
    top.legend(fontsize=8, loc="lower right")
    leaf = path[-1]
    top.set_title(f"Best strategy: {k} phase(s) ending at node #{leaf.id}"
                  + (f" (val {leaf.best_val:.4g})" if leaf.best_val is not None else ""), fontsize=10)
    if not changing:
        note = fig.add_subplot(grid[1, :])
        note.axis("off")
        note.text(0.5, 0.5, "No numeric hyperparameter changes along this strategy (single configuration).",
                  ha="center", va="center", fontsize=10, color="dimgrey", transform=note.transAxes)
        return fig
    for i, (key, role, ys) in enumerate(changing):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        ax.set_gid(f"hp:{key}")
        color = ROLE_COLOR.get(role, ROLE_COLOR[OTHER])
        ax.plot(xs, ys, marker="o", ms=4, color=color, lw=1.5)
        spec = space.specs.get(key)
        finite = [y for y in ys if not math.isnan(y)]
        if spec is not None and spec.log_scale and finite and min(finite) > 0:
            ax.set_yscale("log")  # learning rates move in factors, not steps
        if spec is not None and spec.type == "bool":
            ax.set_yticks([0, 1], ["false", "true"])
        for x, y in zip(xs, ys):
            if not math.isnan(y):
                ax.annotate(f"{int(y)}" if y.is_integer() else f"{y:.3g}", (x, y), xytext=(0, 4),
                            textcoords="offset points", ha="center", fontsize=6.5, color=color)
        ax.set_title(key, fontsize=9, color=color, pad=3)
        ax.set_xticks(xs)
        ax.set_xlim(0.6, k + 0.4)
        ax.margins(y=0.25)
        ax.tick_params(which="both", labelsize=7, pad=1)
        ax.grid(True, lw=0.4, alpha=0.5)
    roles_used = [r for r in (CAPACITY, REGULARISATION, OTHER) if any(c[1] == r for c in changing)]
    handles = [Line2D([], [], color=ROLE_COLOR[r], lw=2, label=ROLE_LABEL[r]) for r in roles_used]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False,
               title="hyperparameter role (x = phase)", title_fontsize=8)
    return fig


def plot_strategy(tree: Tree, path: list[Node], space: HParamSpace, out: Path) -> Path | None:
    """Paper Fig 3: per-phase scores of a strategy path plus trajectories of the hparams it changes."""
    fig = _strategy_figure(tree, path, space)
    return None if fig is None else save_figure(fig, out)


def _layout(tree: Tree) -> dict[int, tuple[float, int]]:
    """Node id -> (x, depth): leaves on consecutive x in DFS order, parents centred over their children."""
    kids: dict[int, list[int]] = {n.id: [] for n in tree}
    roots = []
    for n in tree:  # iterates in id order, so siblings come out oldest first
        kids.get(n.parent, roots).append(n.id)
    pos: dict[int, tuple[float, int]] = {}
    next_x = 0.0
    # Iterative post-order: trees from long searches can be deeper than Python's recursion limit.
    for root in roots:
        stack = [(root, 0, False)]
        while stack:
            nid, depth, expanded = stack.pop()
            if nid in pos:
                continue
            if not kids[nid]:
                pos[nid] = (next_x, depth)
                next_x += 1.0
            elif expanded:
                xs = [pos[c][0] for c in kids[nid]]
                pos[nid] = ((xs[0] + xs[-1]) / 2, depth)
            else:
                stack.append((nid, depth, True))
                stack.extend((c, depth + 1, False) for c in reversed(kids[nid]))
    return pos


def _best_path_edges(tree: Tree) -> set[tuple[int, int]]:
    best = tree.best_node()
    if best is None:
        return set()
    edges: set[tuple[int, int]] = set()
    path = tree.strategy_path(best.id)
    # The path follows checkpoint loads; the drawn tree follows parents, which differ across debug hops.
    for u, v in itertools.pairwise(path):
        hop, w = set(), v
        while w.parent is not None and w.id != u.id and w.parent in tree.nodes and len(hop) < len(tree):
            hop.add((w.parent, w.id))
            w = tree[w.parent]
        if w.id == u.id:
            edges |= hop
    return edges


def _tree_figure(tree: Tree) -> Figure | None:
    if len(tree) == 0:
        return None
    pos = _layout(tree)
    depth = max(d for _, d in pos.values())
    fig = _new_figure(min(7.5, 3.0 + 0.9 * depth))
    ax = fig.add_subplot()
    best_edges = _best_path_edges(tree)
    plain = [[pos[n.parent], pos[n.id]] for n in tree if n.parent in pos and (n.parent, n.id) not in best_edges]
    bold = [[pos[a], pos[b]] for a, b in sorted(best_edges)]
    ax.add_collection(LineCollection(plain, colors="silver", linewidths=1.0, zorder=1, gid="edges"))
    if bold:
        ax.add_collection(LineCollection(bold, colors=BEST_COLOR, linewidths=3.0, zorder=2, gid="best_edges"))
    scores = [n.best_val for n in tree if n.best_val is not None]
    norm = Normalize(min(scores), max(scores)) if scores else None
    if norm is not None and norm.vmin == norm.vmax:
        norm = Normalize(norm.vmin - 0.5, norm.vmax + 0.5)  # one distinct score: avoid a zero-width scale
    cmap = "viridis"
    best = tree.best_node()
    small = len(tree) > 40  # big trees: smaller markers, labels under the marker so neighbours stay apart
    for status, marker in STATUS_MARKER.items():
        for pruned in (False, True):
            for has_score in (True, False):
                group = [n for n in tree if n.status == status and n.pruned == pruned
                         and (n.best_val is not None) == has_score]
                if not group:
                    continue
                kw: dict[str, Any] = {"c": [n.best_val for n in group], "cmap": cmap, "norm": norm} if has_score \
                    else {"color": "lightgrey"}
                ax.scatter([pos[n.id][0] for n in group], [pos[n.id][1] for n in group], marker=marker,
                           s=60 if small else 110, edgecolors="dimgrey" if pruned else "black", linewidths=0.8,
                           alpha=0.3 if pruned else 1.0, zorder=3, gid="nodes", **kw)
    for n in tree:
        label = f"#{n.id}" if small or n.best_val is None else f"#{n.id}\n{n.best_val:.3g}"
        where = {"xytext": (0, -7), "va": "top", "ha": "center"} if small else {"xytext": (8, 0), "va": "center"}
        is_best = best is not None and n.id == best.id
        ax.annotate(label, pos[n.id], textcoords="offset points", **where, fontsize=5.5 if small else 7.5,
                    alpha=0.4 if n.pruned else 1.0, fontweight="bold" if is_best else "normal")
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.9)
    ax.set_ylim(depth + 0.5, -0.5)  # root at the top
    ax.set_yticks(range(depth + 1))
    ax.set_ylabel("depth (phases from root)", fontsize=9)
    ax.set_xticks([])
    ax.tick_params(labelsize=8)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if norm is not None:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="best val", shrink=0.85, pad=0.01)
    handles = [Line2D([], [], ls="none", marker=m, color="grey", mec="black", ms=8, label=lab) for m, lab in (
        ("o", "completed"), ("s", "early stopped"), ("X", "failed"), ("^", "running/pending"))]
    handles += [Line2D([], [], color=BEST_COLOR, lw=3, label="best strategy"),
                Line2D([], [], ls="none", marker="o", color="lightgrey", mec="black", ms=8, label="no score"),
                Line2D([], [], ls="none", marker="o", color="grey", mec="dimgrey", alpha=0.3, ms=8, label="pruned")]
    fig.legend(handles=handles, fontsize=7.5, loc="outside lower center", ncols=len(handles), frameon=False)
    title = f"Search tree: {len(tree)} nodes, {tree.iteration} iterations"
    if best is not None:
        title += f"; best #{best.id} val {best.best_val:.4g}"
    ax.set_title(title, fontsize=10)
    return fig


def plot_tree(tree: Tree, out: Path) -> Path | None:
    """The whole search tree, coloured by best val, shaped by status, best strategy in bold."""
    fig = _tree_figure(tree)
    return None if fig is None else save_figure(fig, out)


def render_search_plots(tree: Tree, search_dir: Path, space: HParamSpace) -> dict[str, Path]:
    """Write every search figure under <search_dir>/plots/; one failing plot never blocks the others."""
    plots = Path(search_dir) / "plots"
    written: dict[str, Path] = {}

    def attempt(name: str, fn) -> None:
        try:
            result = fn()
        except Exception:  # a report must never take the search down with it
            log.warning("search plot %s failed", name, exc_info=True)
            return
        for fname, p in result:
            if p is not None:
                written[fname] = p

    def strategy():
        best = tree.best_node()
        if best is None:
            return []
        return [("strategy.png", plot_strategy(tree, tree.strategy_path(best.id), space, plots / "strategy.png"))]

    attempt("best_so_far", lambda: list(zip(
        ("best_so_far_iteration.png", "best_so_far_compute.png"),
        plot_best_so_far(tree, plots / "best_so_far_iteration.png", plots / "best_so_far_compute.png"))))
    attempt("strategy", strategy)
    attempt("tree", lambda: [("tree.png", plot_tree(tree, plots / "tree.png"))])
    return written

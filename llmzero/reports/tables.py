"""Rich renderables shared by the live display and the final summary: node table, tree, best path."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from ..tree import Node, NodeStatus, Tree

STATUS_STYLE = {
    NodeStatus.PENDING: ("…", "dim"),
    NodeStatus.RUNNING: ("▶", "bold cyan"),
    NodeStatus.COMPLETED: ("✓", "green"),
    NodeStatus.EARLY_STOPPED: ("■", "yellow"),
    NodeStatus.FAILED: ("✗", "red"),
}


def fmt_score(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def node_label(node: Node, best_id: int | None) -> Text:
    icon, style = STATUS_STYLE.get(node.status, ("?", ""))
    label = Text(f"{icon} #{node.id} {node.kind}", style=style)
    if node.resume_from is not None and node.resume_step is not None:
        label.append(f" @#{node.resume_from}:{node.resume_step}", style="dim")
    label.append(f"  val {fmt_score(node.best_val)}")
    if node.status == NodeStatus.RUNNING:
        label.append(f"  step {node.steps_done}/{node.max_steps}", style="cyan")
    if node.changes:
        label.append("  " + ", ".join(f"{k}={_short(v)}" for k, v in list(node.changes.items())[:4]), style="dim")
    if node.id == best_id:
        label.append("  ★ best", style="bold magenta")
    if node.pruned:
        label.append("  (pruned)", style="dim strike")
    return label


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def tree_view(tree: Tree, title: str = "search tree") -> RichTree:
    best = tree.best_node()
    best_id = best.id if best else None
    out = RichTree(Text(title, style="bold"))

    def add(parent_view: RichTree, node: Node) -> None:
        view = parent_view.add(node_label(node, best_id))
        for child in tree.children(node.id, include_pruned=True):
            add(view, child)

    for node in tree:
        if node.parent is None:
            add(out, node)
    return out


def error_line(error: str) -> str:
    """What a failed phase's error says, in one line: a Python traceback's last line (the exception), not its
    first ("Traceback (most recent call last):")."""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback (most recent call last)"):
        return lines[-1]
    return lines[0]


def node_table(tree: Tree, title: str = "Per-node results", base: dict[str, float] | None = None) -> Table:
    """Columns as in the paper's Tables 18-21, plus kind, parent and cost; the base model first, for reference."""
    table = Table(title=title, title_justify="left")
    for col, kw in [("node", {"justify": "right"}), ("kind", {}), ("parent", {"justify": "right"}),
                    ("status", {}), ("best val", {"justify": "right"}), ("best step", {"justify": "right"}),
                    ("test", {"justify": "right"}), ("steps", {"justify": "right"}),
                    ("wall s", {"justify": "right"}), ("GPU-h", {"justify": "right"}),
                    ("agent tok", {"justify": "right"}), ("agent $", {"justify": "right"}),
                    ("diagnosis", {"max_width": 48})]:
        table.add_column(col, **kw)
    if base:
        table.add_row("base", "model", "-", "-", fmt_score(base.get("val")), "-", fmt_score(base.get("test")),
                      "0", "-", "-", "-", "-", "the base model before any RL phase", style="dim")
    for n in tree:
        _, style = STATUS_STYLE.get(n.status, ("", ""))
        table.add_row(
            str(n.id), n.kind, "-" if n.parent is None else str(n.parent),
            Text(n.status + (" (pruned)" if n.pruned else ""), style=style),
            fmt_score(n.best_val), "-" if n.best_step is None else str(n.best_step), fmt_score(n.test_score),
            f"{n.steps_done}/{n.max_steps}", f"{n.cost.wall_s:.1f}", f"{n.cost.gpu_s / 3600:.3f}",
            fmt_tokens(n.cost.agent_tokens_in + n.cost.agent_tokens_out), f"{n.cost.agent_usd:.3f}",
            (error_line(n.error) if n.error else n.diagnosis or "")[:200],
        )
    return table


def fmt_tokens(n: int) -> str:
    return "-" if not n else f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def agent_totals(tree: Tree) -> str:
    """One line of LLM usage for the whole search; the paper's reference is $48 for 64 iterations (B.4)."""
    calls = sum(n.cost.agent_calls for n in tree)
    if not calls:
        return ""
    t_in = sum(n.cost.agent_tokens_in for n in tree)
    cached = sum(n.cost.agent_cached_tokens for n in tree)
    t_out = sum(n.cost.agent_tokens_out for n in tree)
    usd = sum(n.cost.agent_usd for n in tree)
    iters = max(1, tree.iteration)
    return (f"agent: {calls} calls, {fmt_tokens(t_in)} tokens in ({fmt_tokens(cached)} from cache), "
            f"{fmt_tokens(t_out)} out; ${usd:.3f} in all, {fmt_tokens((t_in + t_out) // iters)} tokens and "
            f"${usd / iters:.4f} per iteration over {tree.iteration} iterations")


def path_table(path: list[Node], lengths: list[int]) -> Table:
    table = Table(title="Best strategy (scratch-to-leaf path)", title_justify="left")
    for col in ("phase", "node", "global steps", "best val", "changes", "diagnosis"):
        table.add_column(col, max_width=60 if col == "diagnosis" else None)
    for i, (node, length) in enumerate(zip(path, lengths), start=1):
        changes = ", ".join(f"{k}={_short(v)}" for k, v in node.changes.items()) or ("(θ0)" if i == 1 else "(none)")
        table.add_row(str(i), f"#{node.id}", f"{node.global_offset}-{node.global_offset + length}",
                      fmt_score(node.best_val), changes, node.diagnosis[:300])
    return table

"""Everything the HTML and Markdown reports show, gathered once from a search directory.

A report reads only what a search leaves on disk (tree.json, per-node files, plots/), so it
can be written for a finished search, or for one still running, without touching its state.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tree import Cost, Node, Tree
from ..state.rundir import RunDir
from ..tasks.auto_reward import saved_reward
from ..strategy.recipe import phase_lengths
from .tables import agent_totals, fmt_score

# Search-level figures, in the order the report shows them, with a caption each.
SEARCH_PLOTS: dict[str, str] = {
    "best_so_far_iteration.png": "Best validation score so far, by iteration",
    "best_so_far_compute.png": "Best validation score so far, by compute",
    "strategy.png": "The best strategy: validation score along its phases",
    "tree.png": "The search tree",
}

NODE_COLUMNS = ("node", "kind", "parent", "wall-hrs", "GPU-hrs", "status", "best val", "best step", "test", "agent $")


@dataclass
class NodeReport:
    """One node with what the report adds around it."""

    node: Node
    diff_base: int | None  # the node the config diff is taken against (its parent; for a lifted
    # root-level debug fix, the failure it fixed); None when there is nothing to compare with
    diff: dict[str, tuple[Any, Any]]  # hyperparameter -> (value at diff_base, value here)
    metrics_plot: Path | None
    overlays: list[Path]
    agent_calls: list[dict[str, Any]]  # one summary per saved LLM call (no prompts)
    on_best_path: bool = False

    @property
    def id(self) -> int:
        return self.node.id

    @property
    def status(self) -> str:
        return self.node.status

    @property
    def cost(self) -> Cost:
        return self.node.cost

    @property
    def observations(self) -> list[dict[str, Any]]:
        return list(self.node.observations)


@dataclass
class ReportData:
    search_dir: Path
    tree: Tree
    meta: dict[str, Any]
    nodes: dict[int, NodeReport]
    best: Node | None
    best_path: list[Node]
    path_lengths: list[int]  # steps each best-path phase contributes (as in recipe.yaml)
    search_plots: dict[str, Path]  # file name -> path, only figures that exist
    recipe_file: Path | None = None
    config_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reward: dict[str, Any] | None = None  # task.reward=auto's record (reward/reward.json), its file's text as "source"

    @property
    def base(self) -> dict[str, float] | None:
        base = self.meta.get("base_model")
        return base if isinstance(base, dict) and base else None

    @property
    def title(self) -> str:
        return str(self.meta.get("search_id") or self.search_dir.name)


def config_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs, as (before, after); a key missing on one side shows as None there."""
    out = {}
    for key in list(before) + [k for k in after if k not in before]:
        old, new = before.get(key), after.get(key)
        if old != new or (key in before) != (key in after):
            out[key] = (old, new)
    return out


def _diff_base(tree: Tree, node: Node) -> Node | None:
    for ref in (node.parent, node.debug_of, node.reparented_from):
        if ref is not None and ref in tree.nodes:
            return tree[ref]
    return None


def _call_summary(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"file": path.name, "error": f"unreadable: {exc}"}
    if not isinstance(raw, dict):
        return {"file": path.name, "error": "not a call record"}
    keep = ("role", "provider", "model", "attempt", "verdict", "tokens_in", "tokens_out", "cached_tokens", "usd",
            "latency_s", "created_at")
    return {"file": path.name, **{k: raw.get(k) for k in keep if k in raw}, "images": len(raw.get("images") or [])}


def load_report_data(search_dir: str | Path) -> ReportData:
    """Read a search directory; raises FileNotFoundError when it holds no tree.json."""
    rundir = RunDir(Path(search_dir))
    if not rundir.exists():
        raise FileNotFoundError(f"no search journal at {rundir.tree_file} (is {rundir.root} a search directory?)")
    tree, meta = rundir.load_tree(whole=False)
    best = tree.best_node()
    path = tree.strategy_path(best.id) if best else []
    on_path = {n.id for n in path}
    nodes = {}
    for node in tree:
        ndir = rundir.node_dir(node.id)
        base = _diff_base(tree, node)
        plot = ndir / "metrics.png"
        overlays = sorted((ndir / "overlays").glob("*.png")) if (ndir / "overlays").is_dir() else []
        calls = sorted((ndir / "agent_calls").glob("*.json")) if (ndir / "agent_calls").is_dir() else []
        nodes[node.id] = NodeReport(
            node=node, diff_base=base.id if base else None,
            diff=config_diff(base.hparams, node.hparams) if base else {},
            metrics_plot=plot if plot.is_file() else None, overlays=overlays,
            agent_calls=[_call_summary(p) for p in calls], on_best_path=node.id in on_path,
        )
    plots_dir = rundir.root / "plots"
    search_plots: dict[str, Path] = {}
    if plots_dir.is_dir():
        for name in list(SEARCH_PLOTS) + sorted(p.name for p in plots_dir.glob("*.png")):
            if name not in search_plots and (plots_dir / name).is_file():
                search_plots[name] = plots_dir / name
    return ReportData(
        search_dir=rundir.root, tree=tree, meta=meta, nodes=nodes, best=best, best_path=path,
        path_lengths=phase_lengths(path), search_plots=search_plots,
        recipe_file=rundir.recipe_file if rundir.recipe_file.is_file() else None,
        config_file=rundir.config_file if rundir.config_file.is_file() else None,
        reward=_reward_record(rundir.root),
    )


def _reward_record(search_dir: Path) -> dict[str, Any] | None:
    try:
        record = saved_reward(search_dir)
        if record and record.get("path"):
            record["source"] = Path(record["path"]).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    return record


def reward_summary(record: dict[str, Any]) -> tuple[str, list[str]]:
    """(what the search rewards with, one line per attempt) for task.reward=auto."""
    checks = record.get("checks") or {}
    what = (f"the built-in verifier `{record.get('name')}`, picked offline" if record.get("kind") == "builtin"
            else f"a function written by {record.get('author')} ({record.get('calls', 0)} call(s), "
                 f"${record.get('usd') or 0:.4f})")
    head = f"task.reward=auto: {what}; it passed {checks.get('cases', 0)} checks on held-out rows."
    return head, [f"attempt {a.get('attempt')}: {a.get('verdict')} ({a.get('candidate')})"
                  for a in record.get("attempts") or []]


def fmt_hours(seconds: float) -> str:
    return f"{seconds / 3600:.3f}"


def fmt_value(v: Any) -> str:
    """A hyperparameter value, short and exact enough to read."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


def node_rows(tree: Tree, meta: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The per-node table (paper Tables 18-21 plus kind, parent and agent cost), as display strings.

    The base model comes first when meta carries its scores (meta["base_model"] = {val, test}).
    """
    rows: list[dict[str, str]] = []
    base = (meta or {}).get("base_model")
    if isinstance(base, dict) and base:
        rows.append({"node": "base", "kind": "model", "parent": "-", "wall-hrs": "-", "GPU-hrs": "-",
                     "status": "base model", "best val": fmt_score(base.get("val")), "best step": "-",
                     "test": fmt_score(base.get("test")), "agent $": "-"})
    for n in tree:
        rows.append({
            "node": str(n.id), "kind": n.kind, "parent": "-" if n.parent is None else str(n.parent),
            "wall-hrs": fmt_hours(n.cost.wall_s), "GPU-hrs": fmt_hours(n.cost.gpu_s),
            "status": n.status + (" (pruned)" if n.pruned else ""),
            "best val": fmt_score(n.best_val), "best step": "-" if n.best_step is None else str(n.best_step),
            "test": fmt_score(n.test_score), "agent $": f"{n.cost.agent_usd:.3f}",
        })
    return rows


STOP_COLUMNS = ["node", "step", "decision", "best", "level", "reach", "incumbent", "gap/σ", "agent", "afterwards",
                "reason"]


def stop_rows(tree: Tree) -> list[dict[str, str]]:
    """One row per early-stopper decision (node.stop_checks): the evidence it was taken on and what followed."""
    rows = []
    for n in tree:
        for check in n.stop_checks:
            ev, after = check.get("evidence") or {}, check.get("outcome") or {}
            noise, gap = ev.get("noise"), ev.get("gap")
            rows.append({
                "node": str(n.id), "step": str(check.get("step", "")), "decision": "STOP" if check.get("stop")
                else "CONTINUE", "best": fmt_score(ev.get("best")), "level": fmt_score(ev.get("level")),
                "reach": fmt_score(ev.get("reach")),
                "incumbent": f"#{ev.get('incumbent')} {fmt_score(ev.get('incumbent_best'))}"
                if ev.get("incumbent") is not None else "-",
                "gap/σ": f"{gap / noise:.1f}" if isinstance(gap, (int, float)) and noise else "-",
                "agent": str(check.get("agent", "")), "afterwards": str(after.get("text") or "not known yet"),
                "reason": str(check.get("reason", "")),
            })
    return rows


def stop_summary(tree: Tree) -> str:
    """The stopper's record in one sentence: decisions, stops, and how the known outcomes turned out."""
    checks = [(n, c) for n in tree for c in n.stop_checks]
    if not checks:
        return "The early stopper was not consulted."
    stops = [c for _, c in checks if c.get("stop")]
    run_on = [c.get("outcome") or {} for _, c in checks if not c.get("stop")]
    known = [o for o in run_on if o.get("beat_incumbent") is not None]
    judged = [c.get("outcome") or {} for c in stops if (c.get("outcome") or {}).get("known")]
    saved = sum(max(0, n.max_steps - n.steps_done) for n in tree if n.stop_reason)
    planned = sum(n.max_steps for n in tree if n.finished) or 1
    return (f"{len(checks)} decisions, {len(stops)} STOP; {saved} of {planned} planned steps "
            f"({saved / planned:.0%}) not run. Of the phases let run, {sum(o['beat_incumbent'] for o in known)} of "
            f"{len(known)} decisions were followed by beating the incumbent; of the stops, "
            f"{sum(bool(o.get('would_have_beaten')) for o in judged)} of {len(judged)} judged by their siblings "
            f"might have beaten it ({len(stops) - len(judged)} without a sibling to judge by).")


def changes_text(node: Node, first: bool) -> str:
    if node.changes:
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in node.changes.items())
    return "(θ0, default configuration)" if first else "(no change)"


def strategy_rows(data: ReportData) -> list[dict[str, str]]:
    """The best scratch-to-leaf path, one row per phase."""
    rows = []
    for i, (node, length) in enumerate(zip(data.best_path, data.path_lengths, strict=True), start=1):
        rows.append({
            "phase": str(i), "node": str(node.id), "kind": node.kind,
            "resume": "scratch" if node.resume_from is None else f"#{node.resume_from} @ step {node.resume_step}",
            "global steps": f"{node.global_offset}-{node.global_offset + length}",
            "changes": changes_text(node, i == 1),
            "val": fmt_score(node.best_val), "test": fmt_score(node.test_score),
        })
    return rows


def search_facts(data: ReportData) -> list[tuple[str, str]]:
    """(label, value) pairs summarising the search, shared by both report formats."""
    m, tree = data.meta, data.tree
    wall = sum(n.cost.wall_s for n in tree)
    gpu = sum(n.cost.gpu_s for n in tree)
    counts: dict[str, int] = {}
    for n in tree:
        counts[n.status] = counts.get(n.status, 0) + 1
    facts = [(k, str(m[k])) for k in ("task", "model", "trainer", "agent") if m.get(k)]
    facts += [
        ("nodes", f"{len(tree)} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})" if counts else "0"),
        ("iterations", str(tree.iteration)),
        ("stop reason", str(m.get("stop_reason") or "(search still running or interrupted)")),
        ("compute", f"{wall / 3600:.3f} wall-hours, {gpu / 3600:.3f} GPU-hours"),
    ]
    usage = agent_totals(tree)  # the same line the terminal summary prints
    if usage:
        facts.append(("agent usage", usage.removeprefix("agent: ")))
    if data.best is not None:
        b = data.best
        facts.append(("best node", f"#{b.id}: val {fmt_score(b.best_val)}, test {fmt_score(b.test_score)}"))
    if data.base:
        line = f"val {fmt_score(data.base.get('val'))}, test {fmt_score(data.base.get('test'))}"
        if data.best is not None and data.best.test_score is not None and data.base.get("test") is not None:
            line += f" (best path {data.best.test_score - data.base['test']:+.3f} on test)"
        facts.append(("base model", line))
    return facts

"""The search report as GitHub-flavoured Markdown: facts, the best strategy and the per-node table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..atomic import write_text_atomic
from .report_data import (
    SEARCH_PLOTS,
    STOP_COLUMNS,
    ReportData,
    node_rows,
    reward_summary,
    search_facts,
    stop_rows,
    stop_summary,
    strategy_rows,
)

RIGHT_ALIGNED = {"node", "parent", "wall-hrs", "GPU-hrs", "best val", "best step", "test", "agent $", "phase",
                 "val"}


def _cell(value: object) -> str:
    text = " ".join(str(value).split())  # no newlines inside a table row
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str] | None = None) -> str:
    """A GFM pipe table; columns default to the first row's keys. Empty string for no rows."""
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |",
             "|" + "|".join("---:" if c in RIGHT_ALIGNED else "---" for c in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(data: ReportData, out_dir: Path | None = None) -> str:
    out_dir = out_dir or data.search_dir
    parts = [f"# llmzero search report: {_cell(data.title)}\n"]
    parts.append("\n".join(f"- **{label}:** {_cell(value)}" for label, value in search_facts(data)) + "\n")
    parts.append("## Best strategy\n")
    rows = strategy_rows(data)
    if rows:
        arrow = " → ".join(f"#{r['node']}" for r in rows)
        parts.append(f"Scratch-to-leaf path {arrow}.\n")
        parts.append(markdown_table(rows, ["phase", "node", "kind", "resume", "global steps", "changes", "val",
                                           "test"]))
    else:
        parts.append("No phase has produced a validation score yet.\n")
    if data.reward:
        head, attempts = reward_summary(data.reward)
        parts.append("## Reward\n")
        parts.append(head + "\n\n" + "\n".join(f"- {_cell(a)}" for a in attempts) + "\n")
        if data.reward.get("source"):
            parts.append("```python\n" + data.reward["source"].rstrip() + "\n```\n")
    parts.append("## Early stopping\n")
    parts.append(stop_summary(data.tree) + "\n")
    parts.append(markdown_table(stop_rows(data.tree), STOP_COLUMNS))
    if data.search_plots:
        parts.append("## Search plots\n")
        for name, path in data.search_plots.items():
            rel = Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()
            parts.append(f"![{SEARCH_PLOTS.get(name, name)}]({rel})\n")
    parts.append("## Per-node results\n")
    rows = node_rows(data.tree, data.meta) if len(data.tree) else []
    parts.append(markdown_table(rows) if rows else "The search has no nodes yet.\n")
    return "\n".join(parts)


def write_markdown(data: ReportData, out: str | Path) -> Path:
    out = Path(out)
    write_text_atomic(out, render_markdown(data, out.parent.resolve()))
    return out

"""A self-contained HTML report of a search: one file, no network access needed to view it.

CSS and JavaScript are inline, images are embedded as base64 data URIs, and the node data the
interactive tree is drawn from sits in a `<script type="application/json">` block. Every piece of
text from the search (agent diagnoses, errors, hyperparameter names) is escaped; the script only
ever sets it with textContent. `report.html#node-<id>` opens with that node's details shown.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import write_text_atomic
from .markdown import write_markdown
from .report_data import (
    SEARCH_PLOTS,
    STOP_COLUMNS,
    NodeReport,
    ReportData,
    fmt_value,
    load_report_data,
    node_rows,
    reward_summary,
    search_facts,
    stop_rows,
    stop_summary,
    strategy_rows,
)
from .tables import fmt_score

MAX_OVERLAYS = 2  # newest early-stopper overlays embedded per node (one is drawn per stop check; ~200 kB each)
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml", ".webp": "image/webp"}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def data_uri(path: Path) -> str | None:
    """The file as a data: URI, or None when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def json_safe(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (JSON.parse rejects NaN), unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def json_script(payload: Any, element_id: str) -> str:
    """A JSON data block that cannot end the script element early: every '<', '>' and '&' is \\u-escaped."""
    text = json.dumps(json_safe(payload), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def _when(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class _Images:
    """Embeds each image once and hands out keys for it."""

    def __init__(self) -> None:
        self.uris: dict[str, str] = {}
        self._keys: dict[Path, str] = {}

    def add(self, path: Path | None) -> str | None:
        if path is None:
            return None
        if path not in self._keys:
            uri = data_uri(path)
            if uri is None:
                return None
            self._keys[path] = f"img{len(self._keys)}"
            self.uris[self._keys[path]] = uri
        return self._keys[path]


def _node_payload(nr: NodeReport, images: _Images, max_overlays: int) -> dict[str, Any]:
    n = nr.node
    overlays = nr.overlays[-max_overlays:] if max_overlays > 0 else []
    duration = (n.finished_at - n.started_at) if n.started_at is not None and n.finished_at is not None else None
    return {
        "id": n.id, "parent": n.parent, "kind": n.kind, "status": n.status, "pruned": n.pruned,
        "on_best_path": nr.on_best_path, "iteration": n.iteration,
        "resume_from": n.resume_from, "resume_step": n.resume_step, "global_offset": n.global_offset,
        "max_steps": n.max_steps, "steps_done": n.steps_done, "best_val": n.best_val, "best_step": n.best_step,
        "test_score": n.test_score, "val_subscores": n.val_subscores, "checkpoints": n.checkpoints,
        "hparams": [[k, fmt_value(v)] for k, v in n.hparams.items()],
        "changes": [[k, fmt_value(v)] for k, v in n.changes.items()],
        "diff_base": nr.diff_base,
        "diff": [[k, fmt_value(old), fmt_value(new)] for k, (old, new) in nr.diff.items()],
        "diagnosis": n.diagnosis, "rationale": n.rationale, "observations": n.observations,
        "agent": n.agent, "error": n.error, "unfixable": n.unfixable, "stop_reason": n.stop_reason,
        "debug_of": n.debug_of, "reparented_from": n.reparented_from, "attempts": n.attempts,
        "started": _when(n.started_at), "finished": _when(n.finished_at), "duration_s": duration,
        "cost": {
            "wall_s": n.cost.wall_s, "gpu_h": n.cost.gpu_s / 3600, "tokens_in": n.cost.agent_tokens_in,
            "tokens_out": n.cost.agent_tokens_out, "cached_tokens": n.cost.agent_cached_tokens,
            "usd": n.cost.agent_usd, "calls": n.cost.agent_calls,
        },
        "plot": images.add(nr.metrics_plot),
        "overlays": [{"name": p.name, "img": k} for p in overlays if (k := images.add(p))],
        "overlays_total": len(nr.overlays),
        "agent_calls": nr.agent_calls,
    }


def report_payload(data: ReportData, images: _Images, max_overlays: int = MAX_OVERLAYS) -> dict[str, Any]:
    return {
        "meta": data.meta,
        "best": data.best.id if data.best else None,
        "best_path": [n.id for n in data.best_path],
        "nodes": [_node_payload(nr, images, max_overlays) for nr in data.nodes.values()],
    }


# ---- static HTML pieces ---------------------------------------------------------------------------

STATUSES = ("completed", "early_stopped", "failed", "running", "pending")


def _table(rows: list[dict[str, str]], columns: list[str], *, table_id: str, numeric: set[str],
           link_col: str | None = None) -> str:
    head = "".join(f'<th class="{"num" if c in numeric else ""}" data-col="{i}">{esc(c)}</th>'
                   for i, c in enumerate(columns))
    body = []
    for row in rows:
        node = row.get("node", "")
        attrs = (' class="base-row"' if node == "base"
                 else f' data-node="{esc(node)}" id="{esc(table_id)}-node-{esc(node)}" class="node-row"')
        cells = []
        for c in columns:
            value = row.get(c, "")
            cls = ' class="num"' if c in numeric else ""
            if c == link_col and node not in ("", "base"):
                cells.append(f'<td{cls}><a href="#node-{esc(node)}">#{esc(value)}</a></td>')
            elif c == "status":
                status = value.split(" ")[0]
                badge = status if status in STATUSES else "other"
                cells.append(f'<td{cls}><span class="badge st-{badge}">{esc(value)}</span></td>')
            else:
                cells.append(f"<td{cls}>{esc(value)}</td>")
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return (f'<table id="{esc(table_id)}" class="data"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _header(data: ReportData) -> str:
    m = data.meta
    chips = "".join(f'<span class="chip"><b>{esc(k)}</b> {esc(m[k])}</span>'
                    for k in ("task", "model", "trainer", "agent") if m.get(k))
    cards = []

    def card(label: str, value: str, sub: str = "", cls: str = "") -> None:
        cards.append(f'<div class="card {cls}"><div class="label">{esc(label)}</div>'
                     f'<div class="value">{esc(value)}</div><div class="sub">{esc(sub)}</div></div>')

    best, base = data.best, data.base or {}
    card("best val", fmt_score(best.best_val) if best else "-", f"node #{best.id}" if best else "no score yet")
    card("best test", fmt_score(best.test_score) if best else "-", "best node on the test split")
    if base:
        card("base model", f"{fmt_score(base.get('val'))} / {fmt_score(base.get('test'))}", "val / test before RL")
        if best and best.test_score is not None and base.get("test") is not None:
            delta = best.test_score - base["test"]
            card("test vs base", f"{delta:+.3f}", "best path minus base model", "good" if delta > 0 else "bad")
    card("nodes", str(len(data.tree)), f"{data.tree.iteration} iterations")
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in search_facts(data)
                    if k not in ("task", "model", "trainer", "agent"))
    return (f'<header><h1>llmzero search report <span class="sid">{esc(data.title)}</span></h1>'
            f'<div class="chips">{chips}</div><div class="cards">{"".join(cards)}</div>'
            f'<dl class="facts">{facts}</dl></header>')


def _legend() -> str:
    items = "".join(f'<span class="lg"><i class="sw st-{s}"></i>{esc(s.replace("_", " "))}</span>' for s in STATUSES)
    return (f'<div class="legend">{items}<span class="lg"><i class="ln best"></i>best path</span>'
            f'<span class="lg"><i class="ln dash"></i>does not load the parent\'s weights</span>'
            f'<span class="lg faded"><i class="sw st-completed"></i>pruned</span></div>')


def _strategy(data: ReportData) -> str:
    rows = strategy_rows(data)
    if not rows:
        return '<p class="muted">No phase has produced a validation score yet.</p>'
    arrow = " → ".join(f"#{r['node']}" for r in rows)
    cols = ["phase", "node", "kind", "resume", "global steps", "changes", "val", "test"]
    return (f'<p class="muted">Scratch-to-leaf path {esc(arrow)}; each phase resumes the previous one\'s '
            f'checkpoint.</p>'
            + _table(rows, cols, table_id="strategy-table", numeric={"phase", "val", "test"}, link_col="node"))


def _reward(data: ReportData) -> str:
    if not data.reward:
        return ""
    head, attempts = reward_summary(data.reward)
    items = "".join(f"<li>{esc(a)}</li>" for a in attempts)
    source = f"<pre><code>{esc(data.reward['source'])}</code></pre>" if data.reward.get("source") else ""
    return (f'<section id="reward-section">\n<h2>Reward</h2>\n<p>{esc(head)}</p><ul>{items}</ul>{source}\n'
            "</section>")


def _stops(data: ReportData) -> str:
    rows = stop_rows(data.tree)
    table = _table(rows, STOP_COLUMNS, table_id="stop-table", numeric={"node", "step", "best", "level", "reach",
                                                                        "gap/σ"}, link_col="node") if rows else ""
    return f'<section id="stop-section">\n<h2>Early stopping</h2>\n<p>{esc(stop_summary(data.tree))}</p>{table}\n</section>'


def _plots(data: ReportData) -> str:
    if not data.search_plots:
        return '<p class="muted">No search-level plots in plots/ yet.</p>'
    figs = []
    for name, path in data.search_plots.items():
        uri = data_uri(path)
        if uri is None:
            continue
        caption = SEARCH_PLOTS.get(name, name)
        figs.append(f'<figure class="plot"><img src="{esc(uri)}" alt="{esc(caption)}" data-zoom="1">'
                    f'<figcaption>{esc(caption)} <span class="muted">({esc(name)})</span></figcaption></figure>')
    return f'<div class="plots">{"".join(figs)}</div>'


# The page's style and script live beside this module as plain files, so they can be read and
# linted as CSS and JavaScript; they are inlined into each report (the page must be self-contained).
_ASSETS = Path(__file__).parent / "assets"
CSS = (_ASSETS / "report.css").read_text(encoding="utf-8")
JS = (_ASSETS / "report.js").read_text(encoding="utf-8")


def render_html(data: ReportData, *, max_overlays: int = MAX_OVERLAYS) -> str:
    images = _Images()
    payload = report_payload(data, images, max_overlays)
    numeric = {"node", "parent", "wall-hrs", "GPU-hrs", "best val", "best step", "test", "agent $"}
    rows = node_rows(data.tree, data.meta)
    columns = list(rows[0].keys()) if rows else []
    table = _table(rows, columns, table_id="node-table", numeric=numeric, link_col="node") if rows else \
        '<p class="muted">The search has no nodes yet.</p>'
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    recipe = (f' · best strategy recipe: <code>{esc(data.recipe_file.name)}</code>'
              if data.recipe_file else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmzero report: {esc(data.title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
{_header(data)}
<section id="tree-section">
<h2>Search tree</h2>
<p class="muted">Click a node (or a row of the tables) for its details; <code>report.html#node-&lt;id&gt;</code>
opens a node directly.</p>
<div class="tree-layout">
<div class="panel">{_legend()}<div id="tree-wrap"><svg id="tree-svg" xmlns="http://www.w3.org/2000/svg"
role="img" aria-label="search tree"></svg></div></div>
<aside id="details" class="panel" aria-live="polite"><p class="muted">Select a node.</p></aside>
</div>
</section>
<section id="strategy-section">
<h2>Best strategy</h2>
{_strategy(data)}
</section>
{_reward(data)}
{_stops(data)}
<section id="plots-section">
<h2>Search plots</h2>
{_plots(data)}
</section>
<section id="table-section">
<h2>Per-node results</h2>
{table}
</section>
<footer>Generated {esc(generated)} by llmzero {esc(__version__)} from
<code>{esc(data.search_dir / "tree.json")}</code>{recipe}.</footer>
</main>
<div id="lightbox" role="dialog" aria-label="enlarged image"><img alt="enlarged image"></div>
{json_script(payload, "report-data")}
{json_script(images.uris, "report-images")}
<script>{JS}</script>
</body>
</html>
"""


def write_report(search_dir: str | Path, out_html: str | Path | None = None,
                 out_md: str | Path | None = None) -> tuple[Path, Path]:
    """Write the HTML and Markdown reports (default: report.html and report.md in the search directory)."""
    data = load_report_data(search_dir)
    html_path = Path(out_html) if out_html is not None else data.search_dir / "report.html"
    md_path = Path(out_md) if out_md is not None else data.search_dir / "report.md"
    write_text_atomic(html_path, render_html(data))
    write_markdown(data, md_path)
    return html_path, md_path

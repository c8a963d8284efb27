"""The HTML/Markdown search report, on a real synthetic search, checked in headless Chromium.

Chromium is required (CI installs Debian's `chromium`); without it the browser test fails
rather than skips, so a broken page cannot pass unnoticed.
"""

import base64
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.reports.html import render_html, write_report
from llmzero.reports.markdown import markdown_table, render_markdown
from llmzero.reports.report_data import (
    NODE_COLUMNS,
    config_diff,
    load_report_data,
    node_rows,
)
from llmzero.state.rundir import RunDir

HOSTILE = '</script><img src="x" onerror="alert(1)"> & <b>bold</b>'
PROMPT_SECRET = "FULL PROMPT TEXT THAT MUST NOT BE EMBEDDED"


def _cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=[
            "trainer=synthetic", "trainer.step_delay_s=0", "search.display=false", "cluster.poll_interval_s=0.01",
            *overrides])


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory) -> Path:
    """A real search: an OOMing root fixed by a debug chain (failed, pruned, lifted nodes), then evolves."""
    d = tmp_path_factory.mktemp("report") / "run"
    run_search(_cfg("trainer.memory_budget=1000", "search.budget=6"), d, Console(file=io.StringIO()))
    rundir = RunDir(d)
    tree, meta = rundir.load_tree()
    # Text the page must show as text, never as markup.
    tree[1].diagnosis = HOSTILE
    rundir.save_tree(tree, meta)
    # Optional artefacts a search may or may not have written: make sure the report sees one of each.
    plotted = [n.id for n in tree if (rundir.node_dir(n.id) / "metrics.png").is_file()]
    assert plotted, "the synthetic search should draw metric plots"
    png = rundir.node_dir(plotted[0]) / "metrics.png"
    overlay = rundir.node_dir(plotted[-1]) / "overlays" / "zz-test-overlay.png"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, overlay)
    (d / "plots").mkdir(exist_ok=True)
    if not (d / "plots" / "strategy.png").exists():
        shutil.copy(png, d / "plots" / "strategy.png")
    call = {"role": "proposer", "provider": "test", "model": "m", "attempt": 0, "static_system": PROMPT_SECRET,
            "system": PROMPT_SECRET, "turns": [{"role": "user", "text": PROMPT_SECRET}], "images": [],
            "response": "{}", "verdict": "accepted", "tokens_in": 1234, "tokens_out": 56, "usd": 0.0123}
    (rundir.node_dir(1) / "agent_calls").mkdir(parents=True, exist_ok=True)
    (rundir.node_dir(1) / "agent_calls" / "001-proposer.json").write_text(json.dumps(call))
    return d


@pytest.fixture(scope="module")
def written(search_dir) -> tuple[Path, Path]:
    return write_report(search_dir)


def _embedded(html: str, element_id: str):
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL)
    assert m, f"no JSON block {element_id}"
    return json.loads(m.group(1))


def test_report_data_collects_nodes_diffs_and_artefacts(search_dir):
    data = load_report_data(search_dir)
    tree = data.tree
    assert set(data.nodes) == {n.id for n in tree}
    assert data.base and data.best is not None
    assert [n.id for n in data.best_path] == [n.id for n in tree.strategy_path(data.best.id)]
    # the lifted fix of the failed root has no parent: its diff is against the failure it fixed
    fixed = tree[3]
    assert fixed.parent is None and fixed.debug_of == 2
    assert data.nodes[3].diff_base == 2 and data.nodes[3].diff["batch_size"] == (8, 4)
    for nr in data.nodes.values():
        n = nr.node
        if n.parent is not None:
            assert nr.diff_base == n.parent
            assert nr.diff == config_diff(tree[n.parent].hparams, n.hparams)
        assert nr.status == n.status and nr.cost == n.cost and nr.observations == n.observations
        assert (nr.metrics_plot is not None) == (search_dir / f"nodes/{n.id}/metrics.png").is_file()
    assert any(p.name == "zz-test-overlay.png" for nr in data.nodes.values() for p in nr.overlays)
    assert "strategy.png" in data.search_plots
    call = data.nodes[1].agent_calls[0]
    assert call["role"] == "proposer" and call["tokens_in"] == 1234 and "system" not in call
    assert config_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": (2, 3), "c": (None, 4)}


def test_node_rows_and_markdown_table(search_dir):
    tree, meta = RunDir(search_dir).load_tree()
    rows = node_rows(tree, meta)
    assert rows[0]["node"] == "base" and rows[0]["best val"] != "-"
    assert [r["node"] for r in rows[1:]] == [str(n.id) for n in tree]
    assert all(tuple(r) == NODE_COLUMNS for r in rows)
    assert node_rows(tree)[0]["node"] == "0"  # no meta: no base row
    md = markdown_table(rows)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| node | kind | parent | wall-hrs | GPU-hrs | status | best val |")
    assert re.fullmatch(r"\|(-{3}:?\|)+", lines[1])  # right-aligned numeric columns end in ':'
    assert len(lines) == 2 + len(rows)
    assert lines[2].startswith("| base |")
    assert markdown_table([{"a": "x|y\nz"}]).splitlines()[2] == "| x\\|y z |"


def test_markdown_report(search_dir, written):
    _, md_path = written
    md = md_path.read_text()
    data = load_report_data(search_dir)
    assert md == render_markdown(data, md_path.parent)
    assert md.startswith("# llmzero search report")
    assert "## Best strategy" in md and "## Per-node results" in md
    assert "| node |" in md
    table = md.split("## Per-node results", 1)[1]
    body = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| node |")]
    assert len(body) == len(data.tree) + 1 and body[0].startswith("| base |")
    assert "![" in md and "(plots/strategy.png)" in md
    assert data.meta["stop_reason"] in md


def test_html_is_self_contained_and_escaped(search_dir, written):
    html_path, _ = written
    assert html_path == search_dir / "report.html"
    html = html_path.read_text()
    data = load_report_data(search_dir)
    again = render_html(data)  # deterministic up to the generation time
    stamp = re.compile(r"Generated [^<]*? by")
    assert stamp.sub("", again) == stamp.sub("", html)
    # no network: nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html and "@import" not in html
    # images are embedded
    images = _embedded(html, "report-images")
    assert images and all(v.startswith("data:image/png;base64,") for v in images.values())
    assert "data:image/png;base64," in html
    for v in images.values():
        assert base64.b64decode(v.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    payload = _embedded(html, "report-data")
    nodes = {n["id"]: n for n in payload["nodes"]}
    assert set(nodes) == {n.id for n in data.tree}
    assert payload["best"] == data.best.id and payload["best_path"] == [n.id for n in data.best_path]
    for node in data.tree:
        assert f'id="node-table-node-{node.id}"' in html
        emb = nodes[node.id]
        assert [o["check"] for o in emb["observations"]] == [o["check"] for o in node.observations]
        assert (emb["plot"] in images) == (node.id in [n for n, nr in data.nodes.items() if nr.metrics_plot])
    checks = {o["check"] for n in payload["nodes"] for o in n["observations"]}
    assert checks and checks <= {"supported", "contradicted", "unverifiable"}
    assert any(o["name"] == "zz-test-overlay.png" for n in payload["nodes"] for o in n["overlays"])
    assert nodes[3]["diff"] and ["batch_size", "8", "4"] in nodes[3]["diff"]
    # the base model row and header facts
    assert 'class="base-row"' in html and "base model" in html
    assert data.meta["task"] in html and data.meta["stop_reason"] in html
    # hostile text: escaped in HTML, intact after JSON.parse, and the data block cannot be closed early
    assert HOSTILE not in html and "<img src=\"x\"" not in html
    assert nodes[1]["diagnosis"] == HOSTILE
    assert PROMPT_SECRET not in html
    assert nodes[1]["agent_calls"][0]["verdict"] == "accepted"


def test_cli(search_dir, tmp_path):
    out, md = tmp_path / "r" / "page.html", tmp_path / "r" / "page.md"
    res = subprocess.run([sys.executable, "-m", "llmzero.report", str(search_dir), "--out", str(out),
                          "--markdown", str(md)], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout and str(md) in res.stdout
    assert out.read_text().startswith("<!DOCTYPE html>") and md.read_text().startswith("# llmzero")
    missing = tmp_path / "nope"
    missing.mkdir()
    res = subprocess.run([sys.executable, "-m", "llmzero.report", str(missing)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 2
    assert str(missing / "tree.json") in res.stderr and "Traceback" not in res.stderr


def test_a_read_only_search_directory_is_one_message(search_dir, tmp_path, monkeypatch, capsys):
    # As root (CI) permission bits stop no write, so the fault is a FAKE one: every write under the copy fails with
    # EROFS, as a read-only mount would make it fail.
    import builtins
    import errno

    from llmzero import report

    copy = tmp_path / "ro"
    shutil.copytree(search_dir, copy)
    real_open, real_mkdir = builtins.open, os.mkdir

    def refused(path):
        return OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(path, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and str(path).startswith(str(copy)):
            raise refused(path)
        return real_open(path, mode, *a, **k)

    def fake_mkdir(path, *a, **k):
        if str(path).startswith(str(copy)):
            raise refused(path)
        return real_mkdir(path, *a, **k)

    real_os_open = os.open

    def fake_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(str(copy)):
            raise refused(path)
        return real_os_open(path, flags, *a, **k)

    shutil.rmtree(copy / "plots", ignore_errors=True)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "open", fake_os_open)
    with pytest.raises(SystemExit) as ended:
        report.main([str(copy)])
    err = capsys.readouterr().err
    assert ended.value.code == 4 and "Read-only file system" in err and "cp -r" in err and "Traceback" not in err


# ---- the page in a real browser -----------------------------------------------------------------

def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed; the report's browser test needs it "
                    "(Debian/Ubuntu: apt-get install -y chromium) — CI installs it")
    return exe


def _run_chromium(exe: str, profile: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=180,
                          check=False)


def console_errors(stderr: str) -> list[str]:
    """Chromium logs page console output as `...:INFO:CONSOLE...] "message", source: ...` on stderr."""
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln)]


def test_page_in_headless_chromium(search_dir, written, tmp_path):
    exe = _chromium()
    profile = tmp_path / "profile"

    # the detector sees a script error (so a silent change of chromium's log format cannot hide ours)
    canary = tmp_path / "canary.html"
    canary.write_text("<html><body><script>'use strict'; undefinedFunction();</script></body></html>")
    res = _run_chromium(exe, profile, canary.as_uri(), "--dump-dom")
    assert any("undefinedFunction" in ln for ln in console_errors(res.stderr)), res.stderr[-3000:]

    html_path, _ = written
    url = html_path.as_uri() + "#node-1"
    res = _run_chromium(exe, profile, url, "--dump-dom")
    assert res.returncode == 0, res.stderr[-3000:]
    dom = res.stdout
    assert console_errors(res.stderr) == []
    html_tag = re.search(r"<html[^>]*>", dom).group(0)  # the script marks the root element when it is done
    assert 'data-report-ready="1"' in html_tag and "data-js-errors" not in html_tag
    tree = load_report_data(search_dir).tree
    for node in tree:  # every node drawn in the SVG tree
        assert re.search(rf'<g class="tree-node [^"]*" id="tree-node-{node.id}"', dom), node.id
    assert 'class="edge' in dom and "best-path" in dom
    assert "pruned" in re.search(r'<g class="([^"]*)" id="tree-node-0"', dom).group(1)
    # the details panel shows node 1, selected through the URL hash
    panel = re.search(r'<aside id="details"[^>]*data-node="(\d+)"[^>]*>(.*?)</aside>', dom, re.DOTALL)
    assert panel and panel.group(1) == "1"
    body = panel.group(2)
    assert "Node #1 · debug" in body and tree[1].status in body
    assert "Config diff vs parent #0" in body and "batch_size" in body
    assert "Error" in body and "out of memory" in body.lower()
    assert "001-proposer.json" in body and "accepted" in body
    assert "&lt;/script&gt;&lt;img" in body and '<img src="x"' not in dom  # hostile text shown as text
    assert re.search(r'class="[^"]*selected[^"]*" id="tree-node-1"', dom)
    # a node with observations shows their verdicts
    obs_node = next(n for n in tree if n.observations)
    res = _run_chromium(exe, profile, html_path.as_uri() + f"#node-{obs_node.id}", "--dump-dom")
    assert console_errors(res.stderr) == []
    panel = re.search(r'<aside id="details"[^>]*data-node="(\d+)"[^>]*>(.*?)</aside>', res.stdout, re.DOTALL)
    assert panel and panel.group(1) == str(obs_node.id)
    for obs in obs_node.observations:
        assert f"verdict-{obs['check']}" in panel.group(2)
    assert "data:image/png;base64," in panel.group(2) or not (search_dir / f"nodes/{obs_node.id}/metrics.png").exists()

    shot = tmp_path / "report.png"
    res = _run_chromium(exe, profile, url, f"--screenshot={shot}", "--window-size=1400,1800")
    assert console_errors(res.stderr) == []
    assert shot.is_file() and shot.stat().st_size > 20_000, res.stderr[-3000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1400, 1800)
    print(f"report screenshot: {shot}")


def test_unusual_trees_render_without_script_errors(tmp_path):
    """Empty search, running/pending nodes, NaN and inf values, a dangling parent, a hash for no node."""
    from helpers import add

    from llmzero.tree import Tree

    tree = Tree()
    add(tree, 0, val=0.5, hparams={"lr": float("inf"), "nested": {"a": None}, "seq": [1, 2]})
    add(tree, 1, 0, status="running")
    add(tree, 2, 0, status="pending")
    add(tree, 3, 0, val=float("nan"))
    add(tree, 4, 99, val=0.2)  # parent not in the journal
    RunDir(tmp_path / "odd").save_tree(tree, {})
    RunDir(tmp_path / "empty").save_tree(Tree(), {"task": "t"})
    exe = _chromium()
    for name, expect_nodes in (("odd", 5), ("empty", 0)):
        html_path, md_path = write_report(tmp_path / name)
        html = html_path.read_text()
        assert "NaN" not in _embedded_text(html) and "Infinity" not in _embedded_text(html)
        if not expect_nodes:
            assert "no nodes yet" in md_path.read_text()
        res = _run_chromium(exe, tmp_path / "profile", html_path.as_uri() + "#node-42", "--dump-dom")
        assert console_errors(res.stderr) == [], res.stderr[-3000:]
        html_tag = re.search(r"<html[^>]*>", res.stdout).group(0)
        assert 'data-report-ready="1"' in html_tag and "data-js-errors" not in html_tag
        assert len(re.findall(r'<g class="tree-node ', res.stdout)) == expect_nodes


def _embedded_text(html: str) -> str:
    return re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL).group(1)


def test_report_of_a_running_search_redraws_the_search_plots(tmp_path):
    """`python -m llmzero.report` on a search that has not ended: the best-so-far plot is drawn from the tree as it is."""
    d = tmp_path / "running"
    run_search(_cfg("search.budget=2", "wandb.mode=disabled"), d, Console(file=io.StringIO()))
    shutil.rmtree(d / "plots")
    rundir = RunDir(d)
    tree, meta = rundir.load_tree()
    tree[1].status, tree[1].best_val = "running", None  # as if node 1 were still training
    rundir.save_tree(tree, meta)
    res = subprocess.run([sys.executable, "-m", "llmzero.report", str(d)], capture_output=True, text=True,
                         timeout=180, check=False)
    assert res.returncode == 0, res.stderr
    for name in ("best_so_far_iteration.png", "best_so_far_compute.png", "tree.png"):
        assert (d / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "best_so_far_iteration.png" in (d / "report.md").read_text()


def test_the_node_table_shows_a_tracebacks_exception_not_its_first_line():
    from rich.console import Console

    from llmzero.reports.tables import node_table
    from llmzero.tree import Node, NodeStatus, Tree

    tree = Tree()
    tree.add(Node(id=0, parent=None, kind="root", hparams={}, status=NodeStatus.FAILED,
                  error='Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
                        "OSError: [Errno 28] No space left on device: 'metrics.jsonl'\n"))
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(node_table(tree))
    text = console.export_text()
    assert "No space left on device" in text and "Traceback" not in text

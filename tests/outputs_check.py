"""What every finished search must leave for a user: plots, W&B offline runs, the report (issue 5)."""

import json
import math
from pathlib import Path

from llmzero.metrics.store import MetricSeries
from wandb_read import read_offline_runs

PNG = b"\x89PNG\r\n\x1a\n"


def check_search_outputs(run: Path) -> None:
    raw = json.loads((run / "tree.json").read_text())
    nodes, meta = raw["nodes"], raw["meta"]
    finished = [n for n in nodes if n["status"] in ("completed", "early_stopped", "failed")]

    # per-node metric grids, and the search-level figures
    for n in finished:
        if (run / "nodes" / str(n["id"]) / "metrics.jsonl").stat().st_size:
            assert (run / "nodes" / str(n["id"]) / "metrics.png").read_bytes()[:8] == PNG
    for name in ("best_so_far_iteration.png", "best_so_far_compute.png", "strategy.png", "tree.png"):
        assert (run / "plots" / name).read_bytes()[:8] == PNG, name

    # W&B: one offline run per phase attempt plus the search run, holding the phase's own numbers
    runs = read_offline_runs(run / "wandb")
    by_name = {}
    for r in runs:
        by_name.setdefault(r.name, []).append(r)
    assert set(by_name) == {f"node-{n['id']}" for n in nodes if n["attempts"]} | {"search"}
    for n in nodes:
        if not n["attempts"]:
            continue
        r = by_name[f"node-{n['id']}"][-1]
        assert r.group == meta["search_id"] and r.job_type == n["kind"]
        assert r.config["learning_rate"] == n["hparams"]["learning_rate"] and r.config["parent"] == n["parent"]
        assert r.summary["status"] == n["status"]
        series = MetricSeries.load(run / "nodes" / str(n["id"]) / "metrics.jsonl")
        want = {int(rec["global_step"]): rec["val/score"] for rec in series.records if "val/score" in rec}
        got = {int(row["_step"]): row["val/score"] for row in r.history if "val/score" in row}
        assert got.keys() == want.keys() and all(math.isclose(got[k], want[k]) for k in want)
    search = by_name["search"][-1]
    assert search.summary["best_node"] == max((n for n in nodes if n["best_val"] is not None and not n["pruned"]
                                               and n["status"] in ("completed", "early_stopped")),
                                              key=lambda n: n["best_val"])["id"]

    # the report: HTML with every node, Markdown with one table row per node
    html = (run / "report.html").read_text()
    md = (run / "report.md").read_text()
    assert "data:image/png;base64," in html
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| node")]
    for n in nodes:
        assert any(line.startswith(f"| {n['id']} ") or line.startswith(f"| #{n['id']} ") for line in rows), n["id"]

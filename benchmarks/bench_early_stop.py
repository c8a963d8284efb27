"""Trainer steps saved by the early stopper, at equal search budget, on the synthetic simulator.

Paper §3.5: the stopper ended 62% of nodes early and saved an estimated 40-60% of compute. Here the
same searches (same seeds, same budget of iterations) run twice, with search.early_stop.enabled true
and false, both measured in this run; we report the share of optimiser steps saved and both searches'
best validation scores, so a saving bought with a worse result shows. The simulator's curves react to
hyperparameters but are not a model: the figure is about the search machinery, not about GRPO.

    .venv/bin/python benchmarks/bench_early_stop.py [--seeds 0 1 2] [--budget 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir

ROOT = Path(__file__).resolve().parents[1]


def one(seed: int, budget: int, early_stop: bool, workdir: Path) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "trainer=synthetic", "trainer.step_delay_s=0.01", f"search.seed={seed}", f"search.budget={budget}",
            "search.display=false", "cluster.poll_interval_s=0.01", f"search.early_stop.enabled={str(early_stop).lower()}",
            "search.early_stop.overlays=off"])  # plots do not change the heuristic's decisions
    res = run_search(cfg, workdir / f"seed{seed}-{'es' if early_stop else 'full'}", Console(file=open(os.devnull, "w")))
    nodes = list(res.tree)
    return {"steps": sum(n.steps_done for n in nodes), "planned_steps": sum(n.max_steps for n in nodes),
            "nodes": len(nodes), "early_stopped": sum(n.status == "early_stopped" for n in nodes),
            "best_val": res.best.best_val if res.best else None, "best_test": res.best.test_score if res.best else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "early_stop.json"))
    args = ap.parse_args()
    register_configs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            es, full = one(seed, args.budget, True, Path(tmp)), one(seed, args.budget, False, Path(tmp))
            saved = 1 - es["steps"] / full["steps"]
            rows.append({"seed": seed, "with_stopper": es, "without": full, "steps_saved": round(saved, 3)})
            print(f"seed {seed}: steps {es['steps']} vs {full['steps']} without the stopper -> {saved:.1%} saved; "
                  f"{es['early_stopped']}/{es['nodes']} nodes stopped early; best val {es['best_val']:.4f} vs "
                  f"{full['best_val']:.4f} (test {es['best_test']} vs {full['best_test']})")
    total_es = sum(r["with_stopper"]["steps"] for r in rows)
    total_full = sum(r["without"]["steps"] for r in rows)
    mean_es = sum(r["with_stopper"]["best_val"] for r in rows) / len(rows)
    mean_full = sum(r["without"]["best_val"] for r in rows) / len(rows)
    summary = {"steps_saved": round(1 - total_es / total_full, 3), "mean_best_val_with_stopper": round(mean_es, 4),
               "mean_best_val_without": round(mean_full, 4),
               "share_of_nodes_stopped": round(sum(r["with_stopper"]["early_stopped"] for r in rows)
                                               / sum(r["with_stopper"]["nodes"] for r in rows), 3)}
    print(json.dumps(summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    sys.exit(main())

"""Trainer steps saved by the early stopper, at equal search budget, on the simulator and on the TRL embedded task.

Paper §3.5: the stopper ended 62% of nodes early and saved an estimated 40-60% of compute. Here the same searches
(same seeds, same budget of iterations) run twice, with search.early_stop.enabled true and false, both in this run;
per seed we report the share of optimiser steps saved and both searches' best validation and final test scores.

Goals, checked on every seed: at least 40% of the steps saved, and the best test score of the search with the
stopper no more than one validation-noise unit below the search without it. The unit is σ of one validation
evaluation, estimated from the second differences of the curves of the run without the stopper
(metrics/stop_evidence.py eval_noise). On the simulator the curves react to hyperparameters but are not a model:
its figures are about the search machinery; the TRL rows are real GRPO phases of the embedded default.

    .venv/bin/python benchmarks/bench_early_stop.py                         # simulator, seeds 0-2, 16 iterations (~5 min)
    .venv/bin/python benchmarks/bench_early_stop.py --trainer trl           # the embedded default, 8 iterations (~40 min)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.metrics import names
from llmzero.metrics.stop_evidence import eval_noise
from llmzero.metrics.store import MetricSeries
from llmzero.paths import conf_dir

ROOT = Path(__file__).resolve().parents[1]


TRAINERS = {"synthetic": ["trainer=synthetic", "trainer.step_delay_s=0.01", "cluster.poll_interval_s=0.01"],
            "trl": []}  # trl: the embedded default as `python -m llmzero` runs it


def one(trainer: str, seed: int, budget: int | None, early_stop: bool, workdir: Path) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[
            *TRAINERS[trainer], f"search.seed={seed}", *([f"search.budget={budget}"] if budget else []),
            "search.display=false", f"search.early_stop.enabled={str(early_stop).lower()}",
            "search.early_stop.overlays=off"])  # plots do not change the heuristic's decisions
    run_dir = workdir / f"{trainer}-seed{seed}-{'es' if early_stop else 'full'}"
    res = run_search(cfg, run_dir, Console(file=open(os.devnull, "w")))
    nodes = list(res.tree)
    curves = [MetricSeries.load(run_dir / "nodes" / str(n.id) / "metrics.jsonl").series(names.VAL_SCORE)
              for n in nodes]
    return {"steps": sum(n.steps_done for n in nodes), "planned_steps": sum(n.max_steps for n in nodes),
            "nodes": len(nodes), "early_stopped": sum(n.status == "early_stopped" for n in nodes),
            "best_val": res.best.best_val if res.best else None, "best_test": res.best.test_score if res.best else None,
            "val_noise": eval_noise(curves)[0],
            "decisions": sum(len(n.stop_checks) for n in nodes),
            "continue_then_beat": sum(bool((c.get("outcome") or {}).get("beat_incumbent"))
                                      for n in nodes for c in n.stop_checks if not c["stop"]),
            "stop_might_have_beaten": sum(bool((c.get("outcome") or {}).get("would_have_beaten"))
                                          for n in nodes for c in n.stop_checks if c["stop"])}


def _in_units(loss: float, unit: float) -> float:
    return loss / unit if unit else (math.inf if loss > 0 else 0.0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer", choices=sorted(TRAINERS), default="synthetic")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=None, help="iterations (default: 16 on the simulator, the "
                                                               "configured default on TRL)")
    ap.add_argument("--min-saved", type=float, default=0.40)
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep", default=None, help="keep the searches' directories here (default: a temp dir)")
    args = ap.parse_args()
    budget = args.budget or (16 if args.trainer == "synthetic" else None)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"early_stop_{args.trainer}.json")
    register_configs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        for seed in args.seeds:
            es, full = (one(args.trainer, seed, budget, flag, work) for flag in (True, False))
            saved = 1 - es["steps"] / full["steps"]
            unit = full["val_noise"] or 0.0
            loss = (full["best_test"] or 0.0) - (es["best_test"] or 0.0)
            ok = saved >= args.min_saved and loss <= unit
            rows.append({"seed": seed, "with_stopper": es, "without": full, "steps_saved": round(saved, 3),
                         "test_loss": round(loss, 4), "noise_unit": round(unit, 4), "goal_met": ok})
            print(f"{args.trainer} seed {seed}: steps {es['steps']} vs {full['steps']} without the stopper -> "
                  f"{saved:.1%} saved ({es['early_stopped']}/{es['nodes']} phases stopped); best test "
                  f"{es['best_test']:.4f} vs {full['best_test']:.4f} (val {es['best_val']:.4f} vs "
                  f"{full['best_val']:.4f}); test lost {loss:+.4f} against one noise unit {unit:.4f}; "
                  f"{es['decisions']} decisions -> {'goal met' if ok else 'GOAL MISSED'}", flush=True)
    total_es = sum(r["with_stopper"]["steps"] for r in rows)
    total_full = sum(r["without"]["steps"] for r in rows)
    summary = {"trainer": args.trainer, "steps_saved": round(1 - total_es / total_full, 3),
               "min_steps_saved": min(r["steps_saved"] for r in rows),
               "worst_test_loss_in_noise_units": round(max(_in_units(r["test_loss"], r["noise_unit"])
                                                           for r in rows), 2),
               "share_of_phases_stopped": round(sum(r["with_stopper"]["early_stopped"] for r in rows)
                                                / sum(r["with_stopper"]["nodes"] for r in rows), 3),
               "every_seed_met_the_goal": all(r["goal_met"] for r in rows)}
    print(json.dumps(summary))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    return 0 if summary["every_seed_met_the_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())

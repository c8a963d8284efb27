"""Does adaptive search beat static search at equal compute? LLMZero against every baseline of the paper, on the
embedded task (tiny model, TRL on the CPU), with the same total trainer steps for every method and several seeds.

Methods (all through the same trainer, task, model and θ0):
    practitioner   recipe=practitioner, one static phase as long as the whole budget
    grid           sweeper.mode=grid, the paper's 8 trials (LR x LoRA rank), each budget/8 steps
    random         sweeper.mode=random, 8 trials from Appendix B.2's ranges, each budget/8 steps
    guidebook      recipe=capacity_guidebook, 3 phases growing capacity, budget/3 steps each
    pbt            Ray Tune PopulationBasedTraining, 4 members x budget/4 steps (benchmarks/pbt.py)
    llmzero        the adaptive search, heuristic agent, search.max_trainer_steps=budget
    no_multistage  the same, every child from scratch (paper Table 2's ablation)

Figures per method (mean ± spread over seeds): test score at the best validation step, best validation score, steps
used, steps saved by early stopping (the unrun rest of stopped phases), wall time; LLMZero's ratio to each baseline.
Goals (issue 12): LLMZero >= 1.10 x grid, >= 1.10 x random, >= 1.05 x PBT, and above its no_multistage ablation.

    .venv/bin/python benchmarks/search_vs_baselines.py                      # TRL, 3 seeds: hours on 2 CPU cores
    .venv/bin/python benchmarks/search_vs_baselines.py --trainer synthetic --seeds 0 1 2   # the machinery, minutes

Writes <out>/results.json (every run's figures) and <out>/best_so_far.png (best validation score so far against
trainer steps spent, paper Fig. 2), prints one table. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from llmzero.app import run_search  # noqa: E402
from llmzero.config.hydra_store import register_configs  # noqa: E402
from llmzero.paths import conf_dir  # noqa: E402
from llmzero.strategy.replay import find_recipe  # noqa: E402
from llmzero.tree import NodeStatus  # noqa: E402
from pbt import run_pbt  # noqa: E402

METHODS = ("practitioner", "grid", "random", "guidebook", "pbt", "llmzero", "no_multistage")
GOALS = {"grid": 1.10, "random": 1.10, "pbt": 1.05, "no_multistage": 1.0}


def compose_cfg(overrides: list[str]) -> Any:
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=overrides)


def scaled_recipe(name: str, steps_each: int, where: Path) -> Path:
    """A copy of a shipped recipe whose phases each train `steps_each` steps (the budget split evenly)."""
    raw = yaml.safe_load(find_recipe(name).read_text())
    for phase in raw["phases"]:
        phase.pop("epochs", None)
        phase["steps"] = steps_each
        phase.pop("steps_per_epoch", None)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}_{steps_each}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def method_overrides(method: str, budget: int, out: Path) -> list[str]:
    cap = f"search.max_steps_per_phase={max(budget, 200)}"
    if method == "practitioner":
        return ["recipe=base_recipe", "recipe.name=practitioner",
                f"recipe.file={scaled_recipe('practitioner', budget, out / 'recipes')}", cap]
    if method == "guidebook":
        return ["recipe=base_recipe", "recipe.name=capacity_guidebook",
                f"recipe.file={scaled_recipe('capacity_guidebook', budget // 3, out / 'recipes')}", cap]
    if method in ("grid", "random"):  # 8 static trials of budget/8 steps (random's epochs axis dropped: equal lengths)
        extra = ["~sweeper.random.epochs"] if method == "random" else []
        return [f"sweeper.mode={method}", "sweeper.trials=8", f"hparams.max_steps={budget // 8}", cap, *extra]
    if method in ("llmzero", "no_multistage"):
        ablation = ["search.ablation=no_multistage"] if method == "no_multistage" else []
        return ["search.budget=64", f"search.max_trainer_steps={budget}", *ablation]
    raise ValueError(method)


def tree_figures(result: Any, started: float) -> dict[str, Any]:
    nodes = sorted(result.tree, key=lambda n: (n.finished_at or 0, n.id))
    curve, best, spent = [], None, 0
    for n in nodes:
        spent += int(n.steps_done or 0)
        if n.best_val is not None and (best is None or n.best_val > best):
            best = n.best_val
        curve.append([spent, best])
    saved = sum(max(0, n.max_steps - n.steps_done) for n in result.tree if n.status == NodeStatus.EARLY_STOPPED)
    return {"test": result.best.test_score if result.best else None, "val": result.best.best_val if result.best else None,
            "steps": spent, "saved_by_early_stop": saved, "wall_s": time.time() - started, "phases": len(result.tree),
            "curve": curve, "best_path": [n.id for n in result.path], "base_test": result.base_scores.get("test")}


def run_method(method: str, seed: int, base: list[str], budget: int, out: Path) -> dict[str, Any]:
    where = out / f"{method}-seed{seed}"
    started = time.time()
    if method == "pbt":
        summary = run_pbt([*base, f"search.seed={seed}"], where, population=4, steps=budget // 4,
                          interval=max(1, budget // 16), seed=seed)
        return {"test": summary["test"], "val": summary["best_val"], "steps": summary["steps_used"],
                "saved_by_early_stop": 0, "wall_s": time.time() - started, "phases": None, "curve": None}
    cfg = compose_cfg([*base, f"search.seed={seed}", f"agent.seed={seed}", "search.display=false",
                       *method_overrides(method, budget, out)])
    result = run_search(cfg, where, Console(file=open(where.parent / f"{where.name}.log", "w")))
    return tree_figures(result, started)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for method, rows in runs.items():
        tests = [r["test"] for r in rows if r["test"] is not None]
        out[method] = {
            "test_mean": statistics.mean(tests) if tests else None,
            "test_spread": (max(tests) - min(tests)) / 2 if len(tests) > 1 else 0.0,
            "val_mean": statistics.mean([r["val"] for r in rows if r["val"] is not None] or [0.0]),
            "steps_mean": statistics.mean(r["steps"] for r in rows),
            "saved_mean": statistics.mean(r["saved_by_early_stop"] for r in rows),
            "wall_s_mean": statistics.mean(r["wall_s"] for r in rows),
            "seeds": len(rows),
        }
    ours = out.get("llmzero", {}).get("test_mean")
    for method, row in out.items():
        theirs = row["test_mean"]
        row["llmzero_ratio"] = (ours / theirs) if (ours is not None and theirs) else None
    return out


def base_test(runs: dict[str, list[dict[str, Any]]]) -> float | None:
    """The base model's test score (every run starts from the same model; the search runs score it)."""
    scores = [r["base_test"] for rows in runs.values() for r in rows if r.get("base_test") is not None]
    return statistics.mean(scores) if scores else None


def print_table(summary: dict[str, dict[str, Any]], console: Console, budget: int, seeds: list[int],
                base: float | None) -> None:
    table = Table(title=f"test at the best validation step, {budget} trainer steps per method, seeds {seeds}")
    for col in ("method", "test (mean ± spread)", "best val", "steps used", "saved by early stop", "wall s",
                "llmzero / method"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for method in METHODS:
        row = summary.get(method)
        if row is None:
            continue
        test = "-" if row["test_mean"] is None else f"{row['test_mean']:.3f} ± {row['test_spread']:.3f}"
        ratio = "-" if row["llmzero_ratio"] is None else f"{row['llmzero_ratio']:.2f}x"
        table.add_row(method, test, f"{row['val_mean']:.3f}", f"{row['steps_mean']:.0f}", f"{row['saved_mean']:.0f}",
                      f"{row['wall_s_mean']:.0f}", ratio)
    console.print(table)
    if base:
        console.print(f"base model (no RL): test {base:.3f}; llmzero / base model "
                      f"{(summary.get('llmzero', {}).get('test_mean') or 0) / base:.2f}x")


def plot(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, rows in runs.items():
        for i, r in enumerate(rows):
            if r.get("curve"):
                xs, ys = zip(*[(s, v) for s, v in r["curve"] if v is not None]) if any(v is not None for _, v in
                                                                                       r["curve"]) else ((), ())
                # markers: a one-phase method (practitioner) is a single point, which a step line does not draw
                ax.step(xs, ys, where="post", alpha=0.8, label=method if i == 0 else None, marker="o", markersize=3,
                        color=f"C{METHODS.index(method)}")
    ax.set_xlabel("trainer steps spent")
    ax.set_ylabel("best validation score so far")
    ax.set_title("Best-so-far against cost (paper Fig. 2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", default="trl", choices=["trl", "synthetic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=384, help="trainer steps per method (8 phases of 48 steps)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_vs_baselines")
    parser.add_argument("overrides", nargs="*", help="more llmzero overrides for every method (task=, model=, ...)")
    args = parser.parse_args(argv)
    base = [f"trainer={args.trainer}", "wandb.mode=disabled", *args.overrides]
    if args.trainer == "synthetic":
        base.append("trainer.step_delay_s=0")
    console = Console(width=160)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    runs: dict[str, list[dict[str, Any]]] = {}
    if results_file.exists():  # a rerun keeps the runs already done (each is minutes of training)
        runs = json.loads(results_file.read_text()).get("runs", {})
    for seed in args.seeds:
        for method in args.methods:
            if any(r.get("seed") == seed for r in runs.get(method, [])):
                continue
            console.print(f"[bold]{method}[/] seed {seed} ...")
            row = run_method(method, seed, base, args.budget, args.out)
            row["seed"] = seed
            runs.setdefault(method, []).append(row)
            console.print(f"    test {row['test']}  val {row['val']}  steps {row['steps']}  wall {row['wall_s']:.0f} s")
            results_file.write_text(json.dumps({"budget": args.budget, "trainer": args.trainer, "runs": runs},
                                               indent=1))
    summary = summarise(runs)
    base = base_test(runs)
    results_file.write_text(json.dumps({"budget": args.budget, "trainer": args.trainer, "seeds": args.seeds,
                                        "runs": runs, "summary": summary, "base_test": base}, indent=1))
    plot(runs, args.out / "best_so_far.png")
    print_table(summary, console, args.budget, args.seeds, base)
    missed = [m for m, goal in GOALS.items() if m in summary
              and not ((summary[m]["llmzero_ratio"] or 0) > goal if goal == 1.0
                       else (summary[m]["llmzero_ratio"] or 0) >= goal)]
    console.print(f"goals: llmzero >= 1.10 x grid and random, >= 1.05 x pbt, > no_multistage: "
                  f"{'all met' if not missed else 'missed for ' + ', '.join(missed)}")
    console.print(f"results: {results_file}\nplot:    {args.out / 'best_so_far.png'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

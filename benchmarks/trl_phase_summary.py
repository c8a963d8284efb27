"""Report of benchmarks/bench_trl_phase.py: the per-mode summary of the runs (ratios to bare, the goal check)
and the printed tables."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

GOAL = 0.9


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(rows: list[dict[str, Any]], modes: list[str], gate: str) -> dict[str, Any]:
    by = {m: [r for r in rows if r["mode"] == m] for m in modes + ["bare"]}
    bare_by_rep = {r["repeat"]: r for r in by["bare"]}
    out: dict[str, Any] = {"bare": {"steps_per_s": median([r["steps_per_s"] for r in by["bare"]]),
                                    "per_repeat": [r["steps_per_s"] for r in by["bare"]],
                                    "outside_per_step_ms": median([r["outside_per_step_ms"] for r in by["bare"]
                                                                   if r["outside_per_step_ms"] is not None]),
                                    "compute_steps_per_s": median([r["compute_steps_per_s"] for r in by["bare"]
                                                                   if r["compute_steps_per_s"]])}}
    for m in modes:
        ratios = [r["steps_per_s"] / bare_by_rep[r["repeat"]]["steps_per_s"] for r in by[m]
                  if r["repeat"] in bare_by_rep]
        cratios = [r["compute_steps_per_s"] / bare_by_rep[r["repeat"]]["compute_steps_per_s"] for r in by[m]
                   if r["repeat"] in bare_by_rep and r["compute_steps_per_s"]
                   and bare_by_rep[r["repeat"]]["compute_steps_per_s"]]
        extra = [(r["outside_per_step_ms"] - bare_by_rep[r["repeat"]]["outside_per_step_ms"]) for r in by[m]
                 if r["repeat"] in bare_by_rep and r["outside_per_step_ms"] is not None
                 and bare_by_rep[r["repeat"]]["outside_per_step_ms"] is not None]
        # (C_b + X_b) / (C_b + X_o): bare's TRL compute C_b with each run's own time between steps X; takes the
        # run-to-run noise of TRL's compute (machine load) out and keeps only what happens between steps
        oratios = []
        for r in by[m]:
            b = bare_by_rep.get(r["repeat"])
            if b and b["step_time_sum_s"] and r["outside_step_s"] is not None and b["outside_step_s"] is not None:
                oratios.append((b["step_time_sum_s"] + b["outside_step_s"]) / (b["step_time_sum_s"] + r["outside_step_s"]))
        same = []
        for r in by[m]:
            b = bare_by_rep.get(r["repeat"])
            if b:
                same.append(all(x == y for x, y in zip(r["response_length"], b["response_length"])))
        ratio = median(ratios)
        out[m] = {"steps_per_s": median([r["steps_per_s"] for r in by[m]]),
                  "per_repeat": [r["steps_per_s"] for r in by[m]], "ratio_per_repeat": ratios,
                  "ratio": ratio, "compute_ratio": median(cratios),
                  "overhead_only_ratio": median(oratios), "overhead_only_ratio_per_repeat": oratios,
                  "outside_per_step_ms": median([r["outside_per_step_ms"] for r in by[m]
                                                 if r["outside_per_step_ms"] is not None]),
                  "extra_outside_per_step_ms": median(extra),
                  "same_completion_lengths_as_bare": all(same) if same else None,
                  "pass": bool(ratio >= GOAL), "pass_overhead_only": bool(median(oratios) >= GOAL)}
    out["gate"] = gate
    out["pass"] = bool(out[gate]["pass"]) if gate in out else False
    return out


def print_table(summary: dict[str, Any], modes: list[str], args: argparse.Namespace) -> None:
    print()
    print(f"TRL phase throughput: {args.steps} steps, {args.batch_size} prompts x {args.rollouts} rollouts x "
          f"{args.response_length} tokens, {args.repeats} repeats (median), {args.torch_threads} torch thread(s), "
          f"{'warm-started' if args.warm else f'sft_steps={args.sft_steps}'} tiny model, "
          f"val split {args.val_size_shown} prompts")
    hdr = (f"{'run':<14}{'steps/s':>9}{'ratio to bare':>15}{'(min-max)':>12}{'compute ratio':>15}"
           f"{'between-steps ms/step':>23}{'overhead-only ratio':>21}   verdict")
    print(hdr)
    print("-" * len(hdr))
    b = summary["bare"]
    print(f"{'bare TRL':<14}{b['steps_per_s']:>9.3f}{'1.000':>15}{'':>12}{'1.000':>15}"
          f"{b['outside_per_step_ms']:>23.1f}{'1.000':>21}")
    for m in modes:
        s = summary[m]
        rng = f"{min(s['ratio_per_repeat']):.2f}-{max(s['ratio_per_repeat']):.2f}"
        if m.startswith("bare"):
            tag = "noise floor (bare vs bare)"
        else:
            tag = ("PASS" if s["pass"] else "FAIL") + (" (goal checked here)" if m == summary["gate"] else "")
        print(f"{m:<14}{s['steps_per_s']:>9.3f}{s['ratio']:>15.3f}{rng:>12}{s['compute_ratio']:>15.3f}"
              f"{s['outside_per_step_ms']:>23.1f}{s['overhead_only_ratio']:>21.3f}   {tag}")
    print()
    for m in modes:
        s = summary[m]
        print(f"{m}: per-repeat ratios " + ", ".join(f"{x:.3f}" for x in s["ratio_per_repeat"])
              + f"; extra time between steps vs bare {s['extra_outside_per_step_ms']:+.1f} ms/step"
              + f"; same rollouts as bare: {s['same_completion_lengths_as_bare']}")
    g = summary[summary["gate"]]
    print("columns: ratio = steps/s ours / bare of the same repeat (median; the goal); compute ratio = the same for\n"
          "  TRL's own step time only (on_step_begin..end; differs from 1 by machine noise alone); between-steps =\n"
          "  window minus TRL's step time, per step; overhead-only ratio = (C_b + X_b) / (C_b + X_ours) with C_b bare's\n"
          "  step time and X the between-steps time: the ratio with the compute noise taken out")
    print(f"goal: ours >= {GOAL} x bare TRL  ({summary['gate']}: ratio {g['ratio']:.3f}) "
          f"-> {'PASS' if summary['pass'] else 'FAIL'}   [overhead-only ratio {g['overhead_only_ratio']:.3f} -> "
          f"{'PASS' if g['pass_overhead_only'] else 'FAIL'}]")


def print_profile(prof: dict[str, Any], steps_per_s_ours: float | None) -> None:
    print()
    print(f"profile of our phase (in-process, eval_every={prof['eval_every']} save_every={prof['save_every']}, "
          f"{prof['steps']} steps, train {prof['train_s']:.2f}s = {1e3 * prof['train_s'] / prof['steps']:.0f} ms/step; "
          f"bare fsync {1e3 * prof['fsync_only_s']['median']:.2f} ms median):")
    st = prof["trl_step_time_s"]
    if st["median"]:
        print(f"  TRL's own step (on_step_begin..end): {1e3 * st['median']:.1f} ms median"
              + (f", {1e3 * st['median_right_after_an_eval']:.1f} ms on steps right after an eval"
                 if st["median_right_after_an_eval"] else ""))
    for name, p in prof["parts"].items():
        share = p["total_s"] / prof["train_s"]
        print(f"  {name:<46} {p['calls']:>3} calls {1e3 * p['median_s']:>8.2f} ms median "
              f"{1e3 * p['first_s']:>8.2f} ms first {1e3 * p['per_step_s']:>7.2f} ms/step {100 * share:5.1f}% of training")

"""Throughput of one TRL GRPO+LoRA phase: our backend (TRLTrainer.start) against a bare TRL script.

    .venv/bin/python benchmarks/bench_trl_phase.py [--steps N] [--batch-size B] [--rollouts R]
        [--response-length L] [--repeats K] [--out PATH] [--profile] [--control] [--warm] [--torch-threads T]

Defaults: 50 steps of 8 prompts x 4 rollouts x 16 tokens, 3 repeats; about 2 minutes on 2 CPU cores.

Goal: ours >= 0.9 x bare TRL in optimizer steps per second, same model, hyperparameters, seed and steps.

What runs (all in subprocesses, one at a time, started from this one process):

  ours/default  TRLTrainer(**conf/trainer/trl.yaml).start(PhaseSpec(...)): `python -m llmzero.trainers.trl.phase`, with
                eval_every and save_every as the search passes them by default (conf/trainer/trl.yaml: 5 and 25), so
                the window holds the evaluation and saves of normal use (trainers/trl/eval_plan.py: the 64-prompt val
                slice every 5th step, the whole split where the slice may be a new best, saves at a new best, every
                25th step and the last).
  ours/final    the same with eval_every = save_every = steps: only the last step is evaluated and saved, i.e. only
                the per-step extras that cannot be switched off (metrics record + fsync, progress line, last eval+save).
  bare          `python benchmarks/bench_trl_phase.py --bare <config.json>`: a plain GRPOTrainer built with the SAME
                `grpo_kwargs(...)` and `lora_kwargs(...)` the phase uses, the same model files (load_model_and_tokenizer),
                dataset, reward, seed, torch threads and environment; TRL's default callbacks (PrinterCallback) and one
                minimal callback that appends one line per step for timing. No evals, no saves, no fsync.

The goal is checked on ours/default (--gate), the phase as the search runs it: evaluation must fit the step.
ours/final is reported beside it: the bare script neither validates nor checkpoints, so what separates ours/final
from bare is exactly the cost our phase adds to every step (plus the one eval and save a phase cannot do without).

The modes rotate their order in every repeat (machine load drifts; a fixed order would bias one of them).

Timing (identical for all modes; excludes process start, imports, model loading and step 1, which carries
one-off warm-up costs). This process polls, every --poll-s (10 ms), the per-step file of the run (ours:
metrics.jsonl, read through the handle TRLTrainer.start returns, as the search reads it; bare: the callback's
steps.jsonl, written at the same point of the Trainer loop, `on_log`), and for ours also
checkpoints/step_<k>/COMPLETE of every step that is saved. done(k) is the time step k's LAST artefact appeared
(its record, or its checkpoint when step k is saved, which the phase writes after the record), so everything our
phase does for step k (eval, metrics line with fsync, progress line, save) is inside. Then

    steps/s = (T - 1) / (done(T) - done(1))

The ratio is taken per repeat (ours and bare of the same repeat ran back to back) and the median over repeats is
reported. Both runs also record `step_time` (on_step_begin -> on_step_end: TRL's generation + loss + backward +
optimizer step, nothing of ours), so "outside" = window - sum of step_time is the per-run time spent between steps
(Trainer logging, our callback work): it separates our overhead from machine noise in TRL's own compute. The
"overhead-only ratio" (C_b + X_b) / (C_b + X_ours), with C_b bare's summed step_time and X each run's time between
steps, is the ratio with that noise taken out; the goal itself is checked on the measured steps/s ratio.
--control adds a second bare run per repeat, whose ratio to bare is the noise floor of this machine.
A check that the two runs really trained the same phase compares the per-step mean completion length and grad norm.

--profile runs one more, instrumented, phase in-process (PhaseRunner with timers around evaluate, save,
append_record and the progress print) and reports what our callback costs per step.

Threads: --torch-threads 1 by default, for ours and bare alike (conf/trainer/trl.yaml says 2). On a 2-vCPU machine
shared with other work, two OpenMP threads stall at every barrier whenever one of them is descheduled: a 32x64 @
64x256 matmul measured 0.015 ms with 1 thread and anywhere from 0.015 to 16 ms with 2, and whole GRPO steps of the
tiny model varied from 0.08 s to 16 s between otherwise identical runs, which no number of repeats can average out.
With one thread the tiny model is as fast as with two when the machine is idle, and steady when it is not.

Model: builtin:tiny (conf/model/tiny.yaml's build options) WITHOUT its SFT warm start (--sft-steps 0, seconds to
build, cached under the temp dir; --warm uses the warm-started one of normal use, shipped in the package):
completions of a random model mostly run to --response-length, so each step and each greedy eval does the full
token budget (the warm-started model stops earlier, which makes steps cheaper and our fixed costs relatively larger).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the sibling modules below: benchmarks/ is already sys.path[0] when this file is run as a script (so also in the
# --bare / --profile-child children, started by file path); added for `python -m benchmarks.bench_trl_phase`
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from trl_phase_config import (
    device_and_dtype,
    ensure_model,
    hyperparameters,
    phase_grpo_kwargs,
    task_config,
    trainer_options,
)
from trl_phase_summary import GOAL, print_profile, print_table, summarize
from trl_phase_workers import bare_main, profile_main

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "trl_phase.json"


# ------------------------------------------------------------------------------------------------ runs (parent)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, model_path: Path):
        from llmzero.trainers.trl.backend import TRLTrainer

        self.args, self.work = args, work
        self.task = task_config(args.train_size)
        self.hp = hyperparameters(args, self.task)
        self.opts = trainer_options()
        if args.torch_threads is not None:
            self.opts["torch_threads"] = int(args.torch_threads)
        self.model_cfg = {"name": "tiny", "path": str(model_path)}
        self.model_path = model_path
        self.device, self.dtype = device_and_dtype(self.opts)
        use_cpu = not self.device.startswith("cuda")
        self.kwargs = phase_grpo_kwargs(self.hp, args.steps, args.seed, self.opts, "OUTPUT_DIR", use_cpu,
                                        bf16=(not use_cpu) and self.dtype == "bfloat16")
        probe = TRLTrainer(task=self.task, model=self.model_cfg, **self.opts)
        problems = probe.check(self.hp)
        if problems:
            raise SystemExit("hyperparameters rejected by the TRL backend: " + "; ".join(problems))
        self.env = probe.env()  # the phase's environment (threads, tokenizers), given to the bare run too
        self.modes = {"ours/default": (int(self.opts.get("eval_every", 5)), int(self.opts.get("save_every", 5))),
                      "ours/final": (args.steps, args.steps)}
        if args.ours_modes:
            self.modes = {m: v for m, v in self.modes.items() if m.split("/")[1] in args.ours_modes}

    # -- polling ----------------------------------------------------------------------------------------------
    def _watch(self, is_done: Any, poll_records: Any, saved_dir: Path | None, saved_steps: set[int],
               timeout: float) -> tuple[dict[int, float], dict[int, float], list[dict[str, Any]]]:
        rec_t: dict[int, float] = {}
        ckpt_t: dict[int, float] = {}
        records: list[dict[str, Any]] = []
        t_end = time.monotonic() + timeout
        while True:
            finished = is_done()  # read before the files: nothing is missed after the last poll
            now = time.monotonic()
            for r in poll_records():
                records.append(r)
                rec_t.setdefault(int(r["step"]), now)
            if saved_dir is not None:
                for s in sorted(saved_steps - set(ckpt_t)):
                    if (saved_dir / f"step_{s}" / "COMPLETE").exists():
                        ckpt_t[s] = now
            if finished:
                return rec_t, ckpt_t, records
            if now > t_end:
                raise TimeoutError(f"run did not finish within {timeout:.0f}s")
            time.sleep(self.args.poll_s)

    def _summary(self, mode: str, rep: int, rec_t: dict[int, float], ckpt_t: dict[int, float],
                 records: list[dict[str, Any]], wall: float) -> dict[str, Any]:
        T = self.args.steps
        missing = [s for s in range(1, T + 1) if s not in rec_t]
        if missing:
            raise RuntimeError(f"{mode}: no record for steps {missing[:5]}")
        done = {s: max(rec_t[s], ckpt_t.get(s, rec_t[s])) for s in rec_t}
        window = done[T] - done[1]
        by_step = {int(r["step"]): r for r in records}
        st = [by_step[s].get("step_time") for s in range(2, T + 1)]
        st_sum = sum(x for x in st if x is not None) if all(x is not None for x in st) else None
        row = {"mode": mode, "repeat": rep, "steps": T, "window_s": window, "steps_per_s": (T - 1) / window,
               "process_wall_s": wall, "step_time_sum_s": st_sum,
               "outside_step_s": (window - st_sum) if st_sum is not None else None,
               "outside_per_step_ms": 1e3 * (window - st_sum) / (T - 1) if st_sum is not None else None,
               "compute_steps_per_s": (T - 1) / st_sum if st_sum else None,
               "done_times_s": [done[s] - done[1] for s in range(1, T + 1)],
               "step_time_s": [by_step[s].get("step_time") for s in range(1, T + 1)],
               "response_length": [by_step[s].get("response_length/mean") for s in range(1, T + 1)],
               "grad_norm": [by_step[s].get("grad_norm") for s in range(1, T + 1)]}
        if mode.startswith("bare"):  # the callback's own clock, as a check of the polling
            ts = [by_step[s]["t"] for s in (1, T)]
            row["steps_per_s_internal_clock"] = (T - 1) / (ts[1] - ts[0])
        return row

    # -- one run of each kind -----------------------------------------------------------------------------------
    def run_ours(self, mode: str, rep: int) -> dict[str, Any]:
        from llmzero.trainers.base import PhaseSpec
        from llmzero.trainers.trl.backend import TRLTrainer

        every_e, every_s = self.modes[mode]
        out = self.work / f"r{rep}-{mode.replace('/', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        trainer = TRLTrainer(task=self.task, model=self.model_cfg, **{**self.opts, "eval_every": every_e,
                                                                       "save_every": every_s})
        spec = PhaseSpec(node_id=0, hparams=dict(self.hp), output_dir=str(out), max_steps=self.args.steps,
                         eval_every=every_e, save_every=every_s, seed=self.args.seed)
        saved = set(range(1, self.args.steps + 1))  # which steps save depends on the scores (eval_plan.py)
        t0 = time.monotonic()
        handle = trainer.start(spec)
        try:
            rec_t, ckpt_t, records = self._watch(handle.done, handle.poll, out / "checkpoints", saved,
                                                 self.args.timeout_s)
        finally:
            handle.kill()  # no-op once it has ended
        wall = time.monotonic() - t0
        res = handle.result()
        if res.status != "completed":
            raise RuntimeError(f"{mode}: phase {res.status}: {res.error}\n{res.log_tail}")
        row = self._summary(mode, rep, rec_t, ckpt_t, records, wall)
        row.update({"eval_every": every_e, "save_every": every_s, "checkpoints": res.checkpoints,
                    "evals": sum(1 for r in records if "val/score" in r)})
        if self.args.keep_grpo_log:
            row["log"] = str(out / "log.txt")
        return row

    def run_bare(self, rep: int, mode: str = "bare") -> dict[str, Any]:
        from llmzero.metrics.store import MetricsTail
        from llmzero.trainers.trl.config_map import lora_kwargs

        out = self.work / f"r{rep}-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        steps_file = out / "steps.jsonl"
        cfg = {"task": self.task, "model_path": str(self.model_path), "device": self.device, "dtype": self.dtype,
               "threads": int(self.opts.get("torch_threads") or 0),
               "grpo_kwargs": {**self.kwargs, "output_dir": str(out / ".trl")},
               "lora_kwargs": lora_kwargs(int(self.hp["lora_rank"])), "steps_file": str(steps_file)}
        (out / "bare_config.json").write_text(json.dumps(cfg, indent=2))
        argv = [sys.executable, str(Path(__file__).resolve()), "--bare", str(out / "bare_config.json")]
        tail = MetricsTail(steps_file)
        t0 = time.monotonic()
        with open(out / "log.txt", "w") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **self.env}, start_new_session=True, cwd=str(ROOT))
            try:
                rec_t, ckpt_t, records = self._watch(lambda: proc.poll() is not None, tail.poll, None, set(),
                                                     self.args.timeout_s)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            log = (out / "log.txt").read_text(errors="replace").splitlines()[-40:]
            raise RuntimeError(f"bare run exited {proc.returncode}:\n" + "\n".join(log))
        return self._summary(mode, rep, rec_t, ckpt_t, records, wall)

    def run_profile(self) -> dict[str, Any]:
        from llmzero.trainers.base import PhaseSpec
        from llmzero.state.phase_dir import prepare_for_start
        from llmzero.state.phase_dir import PHASE_CONFIG
        from llmzero.trainers.trl.backend import TRLTrainer

        every_e, every_s = self.modes.get("ours/default", (5, 5))
        out = self.work / "profile"
        shutil.rmtree(out, ignore_errors=True)
        trainer = TRLTrainer(task=self.task, model=self.model_cfg, **{**self.opts, "eval_every": every_e,
                                                                       "save_every": every_s})
        spec = PhaseSpec(node_id=0, hparams=dict(self.hp), output_dir=str(out), max_steps=self.args.steps,
                         eval_every=every_e, save_every=every_s, seed=self.args.seed)
        prepare_for_start(spec.dir, spec.resume_own)
        from llmzero.atomic import write_json_atomic

        write_json_atomic(out / PHASE_CONFIG, {"spec": spec.to_dict(), "task": trainer.task,
                                               "model": trainer.model, "trainer": trainer.options()})
        pcfg = {"phase_config": str(out / PHASE_CONFIG), "profile_out": str(out / "profile.json")}
        (out / "profile_config.json").write_text(json.dumps(pcfg))
        argv = [sys.executable, str(Path(__file__).resolve()), "--profile-child", str(out / "profile_config.json")]
        with open(out / "log.txt", "w") as logf:
            rc = subprocess.run(argv, check=False, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **trainer.env()}, cwd=str(ROOT),
                                timeout=self.args.timeout_s).returncode
        if rc != 0:
            raise RuntimeError("profile run failed:\n" + (out / "log.txt").read_text(errors="replace")[-3000:])
        prof = json.loads((out / "profile.json").read_text())
        prof.update({"eval_every": every_e, "save_every": every_s})
        return prof


# ------------------------------------------------------------------------------------------------ main


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8, help="prompts per optimizer step")
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--response-length", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-size", type=int, default=None, help="override the task's train split size")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch/OpenMP threads of every run (ours and bare alike); default 1, see the module "
                         "docstring; pass 2 for conf/trainer/trl.yaml's value")
    ap.add_argument("--sft-steps", type=int, default=0, help="tiny-model warm start (0: random weights, fast build)")
    ap.add_argument("--warm", action="store_true",
                    help="use the tiny model with its warm start as conf/model/tiny.yaml builds it (overrides --sft-steps)")
    ap.add_argument("--ours-modes", nargs="*", choices=["default", "final"], default=None,
                    help="which of our configurations to run (default: both)")
    ap.add_argument("--gate", choices=["ours/default", "ours/final"], default="ours/default",
                    help="the configuration the goal is checked on (default ours/final: see the module docstring)")
    ap.add_argument("--control", action="store_true",
                    help="also run bare TRL a second time per repeat (bare-control): its ratio to bare is the noise floor")
    ap.add_argument("--profile", action="store_true", help="also run one instrumented phase and print the breakdown")
    ap.add_argument("--poll-s", type=float, default=0.01)
    ap.add_argument("--timeout-s", type=float, default=900.0)
    ap.add_argument("--work-dir", default=None, help="where phase dirs and the model cache go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the phase directories")
    ap.add_argument("--keep-grpo-log", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--bare", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--profile-child", metavar="CONFIG", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.bare:
        return bare_main(args.bare)
    if args.profile_child:
        return profile_main(args.profile_child)
    if args.steps < 2:
        raise SystemExit("--steps must be >= 2 (the rate is measured from step 1 to the last step)")

    t_start = time.monotonic()
    base = Path(args.work_dir) if args.work_dir else Path(tempfile.gettempdir()) / "llmzero-bench-trl"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    try:
        task = task_config(args.train_size)
        t0 = time.monotonic()
        model_path = ensure_model(task, None if args.warm else args.sft_steps, base / "models")
        print(f"model {model_path} ({time.monotonic() - t0:.1f}s)", flush=True)
        bench = Bench(args, work, model_path)
        modes = list(bench.modes)
        all_modes = modes + ["bare"] + (["bare-control"] if args.control else [])
        print(f"hparams {json.dumps(bench.hp)}", flush=True)
        print(f"trainer {json.dumps(bench.opts)}; device {bench.device} {bench.dtype}", flush=True)
        rows: list[dict[str, Any]] = []
        for rep in range(args.repeats):
            order = all_modes[rep % len(all_modes):] + all_modes[:rep % len(all_modes)]
            for mode in order:
                row = bench.run_bare(rep, mode) if mode.startswith("bare") else bench.run_ours(mode, rep)
                row["order"] = order.index(mode)
                rows.append(row)
                extra = (f" outside-step {row['outside_per_step_ms']:.1f} ms/step"
                         if row["outside_per_step_ms"] is not None else "")
                print(f"repeat {rep} {mode:<13} {row['steps_per_s']:.3f} steps/s (window {row['window_s']:.2f}s,"
                      f" process {row['process_wall_s']:.1f}s){extra}", flush=True)
        compared = modes + (["bare-control"] if args.control else [])
        args.val_size_shown = task.get("val_size")
        summary = summarize(rows, compared, args.gate if args.gate in modes else modes[0])
        print_table(summary, compared, args)
        prof = None
        if args.profile:
            prof = bench.run_profile()
            print_profile(prof, summary.get("ours/default", {}).get("steps_per_s"))
        result = {
            "benchmark": "trl_phase", "goal": f"ours >= {GOAL} x bare TRL (steps/s)",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(), "load_avg_at_end": list(os.getloadavg()),
            "args": {k: v for k, v in vars(args).items() if k not in ("bare", "profile_child", "val_size_shown")},
            "hparams": bench.hp, "trainer": bench.opts, "task": task, "model_path": str(model_path),
            "device": bench.device, "dtype": bench.dtype,
            "grpo_kwargs": {k: v for k, v in bench.kwargs.items() if k != "output_dir"},
            "modes": {m: {"eval_every": e, "save_every": s} for m, (e, s) in bench.modes.items()},
            "summary": summary, "profile": prof, "runs": rows,
            "total_wall_s": time.monotonic() - t_start,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nresults: {out}  (total {result['total_wall_s']:.0f}s)")
        return 0 if summary["pass"] else 1
    finally:
        if args.keep:
            print(f"phase directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

"""Throughput of one TRL GRPO+LoRA phase: our backend (TRLTrainer.start) against a bare TRL script.

    .venv/bin/python benchmarks/bench_trl_phase.py [--steps N] [--batch-size B] [--rollouts R]
        [--response-length L] [--repeats K] [--out PATH] [--profile] [--control] [--warm] [--torch-threads T]

Defaults: 50 steps of 8 prompts x 4 rollouts x 16 tokens, 3 repeats; about 2 minutes on 2 CPU cores.

Goal: ours >= 0.9 x bare TRL in optimizer steps per second, same model, hyperparameters, seed and steps.

What runs (all in subprocesses, one at a time, started from this one process):

  ours/default  TRLTrainer(**conf/trainer/trl.yaml).start(PhaseSpec(...)): `python -m llmzero.trainers.trl.phase`, with
                eval_every = save_every = 5 as the search passes them by default (conf/trainer/trl.yaml), so the window
                holds the greedy val evals and adapter saves of normal use (every 5th step and the last).
  ours/final    the same with eval_every = save_every = steps: only the last step is evaluated and saved, i.e. only
                the per-step extras that cannot be switched off (metrics record + fsync, progress line, last eval+save).
  bare          `python benchmarks/bench_trl_phase.py --bare <config.json>`: a plain GRPOTrainer built with the SAME
                `grpo_kwargs(...)` and `lora_kwargs(...)` the phase uses, the same model files (load_model_and_tokenizer),
                dataset, reward, seed, torch threads and environment; TRL's default callbacks (PrinterCallback) and one
                minimal callback that appends one line per step for timing. No evals, no saves, no fsync.

The goal is checked on ours/final (--gate): the bare script neither validates nor checkpoints, so ours/final is the
like-for-like comparison, and what separates it from bare is exactly the cost our phase adds to every step (plus the
one eval and save a phase cannot do without). ours/default is reported beside it: the extra there is real work (a
greedy decode of the whole val split, an adapter save) whose share of a step depends on the search's cadence and on
how cheap one step is (each eval decodes task.val_size prompts greedily, conf/task/arithmetic.yaml).

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
build, cached under the temp dir; --warm builds the warm-started one of normal use, about a minute):
completions of a random model mostly run to --response-length, so each step and each greedy eval does the full
token budget (the warm-started model stops earlier, which makes steps cheaper and our fixed costs relatively larger).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL = 0.9
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "trl_phase.json"


# ------------------------------------------------------------------------------------------------ config


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(path.read_text()) or {}
    raw.pop("defaults", None)
    return raw


def task_config(train_size: int | None) -> dict[str, Any]:
    cfg = _yaml(ROOT / "conf" / "task" / "arithmetic.yaml")
    cfg.setdefault("seed", 0)
    if train_size:
        cfg["train_size"] = int(train_size)
    return cfg


def trainer_options() -> dict[str, Any]:
    """conf/trainer/trl.yaml as the search instantiates it (eval_every/save_every set per mode)."""
    cfg = _yaml(ROOT / "conf" / "trainer" / "trl.yaml")
    cfg.pop("_target_", None)
    return cfg


def hyperparameters(args: argparse.Namespace, task_cfg: dict[str, Any]) -> dict[str, Any]:
    """Search-space defaults < task.hparams < model(tiny).hparams < command line, as llmzero.app.root_hparams."""
    space = _yaml(ROOT / "conf" / "search" / "default.yaml")["space"]
    hp = {k: v.get("default") for k, v in space.items()}
    hp.update(task_cfg.get("hparams") or {})
    hp.update(_yaml(ROOT / "conf" / "model" / "tiny.yaml").get("hparams") or {})
    hp.update({"batch_size": args.batch_size, "rollouts": args.rollouts, "response_length": args.response_length,
               "max_steps": 0})
    return hp


def ensure_model(task_cfg: dict[str, Any], sft_steps: int | None, cache: Path) -> Path:
    """builtin:tiny with conf/model/tiny.yaml's build options; sft_steps=None keeps its warm start as configured."""
    from llmzero.models.tiny import ensure_tiny_model
    from llmzero.tasks.base import build_task

    build = dict(_yaml(ROOT / "conf" / "model" / "tiny.yaml").get("build") or {})
    if sft_steps is not None:
        build["sft_steps"] = int(sft_steps)
    return ensure_tiny_model(build_task(task_cfg), build, cache_dir=cache, progress=False)


def phase_grpo_kwargs(hp: dict[str, Any], steps: int, seed: int, opts: dict[str, Any], output_dir: str,
                      use_cpu: bool, bf16: bool) -> dict[str, Any]:
    """Exactly the call phase.py (PhaseRunner.prepare) makes for a fresh phase (start_step 0, no pass-through)."""
    from llmzero.trainers.trl.config_map import grpo_kwargs

    return grpo_kwargs(hp, max_steps=steps, output_dir=output_dir, seed=seed, use_cpu=use_cpu,
                       loss_type=str(opts.get("loss_type") or "dapo"),
                       micro_batch_size=int(opts.get("micro_batch_size") or 0),
                       gradient_checkpointing=bool(opts.get("gradient_checkpointing", False)), bf16=bf16,
                       passthrough={})


def device_and_dtype(opts: dict[str, Any]) -> tuple[str, str]:
    """What phase.py selects (select_device / select_dtype), as strings for the bare config."""
    from llmzero.trainers.trl.model import select_device, select_dtype

    device = select_device(str(opts.get("device") or "auto"))
    dtype = select_dtype(opts.get("dtype"), device)
    return device, str(dtype).replace("torch.", "")


# ------------------------------------------------------------------------------------------------ bare TRL (child)


def bare_main(config_path: str) -> int:
    """The bare TRL run: plain GRPOTrainer, same kwargs, one timing callback. Runs in its own process."""
    cfg = json.loads(Path(config_path).read_text())
    import torch

    if int(cfg["threads"]) > 0:
        torch.set_num_threads(int(cfg["threads"]))
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llmzero.models.loading import load_model_and_tokenizer
    from llmzero.tasks.base import Example, build_task
    from llmzero.trainers.trl.phase import TRL_KEYS

    task = build_task(cfg["task"])
    train = task.splits()["train"]
    model, tokenizer = load_model_and_tokenizer(cfg["model_path"], dtype=cfg["dtype"], device=cfg["device"])
    data = Dataset.from_list([{"prompt": ex.prompt, "answer": ex.answer, "subtask": ex.subtask} for ex in train])

    def task_reward(prompts: list[str], completions: list[str], answer: list[str], subtask: list[str],
                    **_: Any) -> list[float]:
        return [float(task.reward(c, Example(prompt=p, answer=a, subtask=s)))
                for p, c, a, s in zip(prompts, completions, answer, subtask)]

    out = open(cfg["steps_file"], "a", encoding="utf-8")  # noqa: SIM115 - held open for the whole run, like a log

    class Stamp(TrainerCallback):
        t0 = None
        dt = None

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kw):
            self.dt = time.monotonic() - self.t0 if self.t0 is not None else None

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs or "train_runtime" in logs:
                return
            rec = {"step": int(state.global_step), "t": time.time(), "step_time": self.dt}
            rec.update({name: float(logs[key]) for key, name in TRL_KEYS.items()
                        if isinstance(logs.get(key), (int, float)) and not isinstance(logs.get(key), bool)})
            out.write(json.dumps(rec) + "\n")
            out.flush()

    trainer = GRPOTrainer(model=model, reward_funcs=task_reward, args=GRPOConfig(**cfg["grpo_kwargs"]),
                          train_dataset=data, processing_class=tokenizer, peft_config=LoraConfig(**cfg["lora_kwargs"]),
                          callbacks=[Stamp()])
    trainer.train()
    out.close()
    return 0


# ------------------------------------------------------------------------------------------------ profile (child)


def profile_main(config_path: str) -> int:
    """Our phase in-process (PhaseRunner, same code as `python -m llmzero.trainers.trl.phase`), with timers around
    each piece of work our callback adds; writes a JSON breakdown to cfg["profile_out"]."""
    cfg = json.loads(Path(config_path).read_text())
    from llmzero.trainers.trl import phase as P

    acc: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                acc.setdefault(name, []).append(time.perf_counter() - t)
        return wrapper

    # fsync alone, on the same file system, for scale (before os.fsync is wrapped below)
    fs = []
    probe = Path(cfg["phase_config"]).parent / "fsync_probe.txt"
    with open(probe, "a") as fh:
        for _ in range(20):
            fh.write("x" * 300 + "\n")
            fh.flush()
            t = time.perf_counter()
            os.fsync(fh.fileno())
            fs.append(time.perf_counter() - t)
    probe.unlink()

    from peft import PeftModel

    import llmzero.trainers.base as B
    import llmzero.trainers.trl.model as M

    # wrappers nest: on_log contains the eval, append_record, the print and the save; fsync is inside several
    P.PhaseCallback.on_log = timed("PhaseCallback.on_log (all our per-step work)", P.PhaseCallback.on_log)
    P.PhaseRunner.evaluate = timed("greedy val eval", P.PhaseRunner.evaluate)
    P.PhaseRunner.save = timed("adapter save", P.PhaseRunner.save)
    PeftModel.save_pretrained = timed("save: peft save_pretrained", PeftModel.save_pretrained)
    M.write_json_atomic = timed("save: phase.json + val.json (atomic)", M.write_json_atomic)
    B.mark_checkpoint_complete = timed("save: COMPLETE marker", B.mark_checkpoint_complete)
    P.append_record = timed("metrics append_record", P.append_record)
    P.log = timed("progress line (print)", P.log)
    os.fsync = timed("os.fsync, all callers", os.fsync)
    P.PhaseCallback.on_step_begin = timed("on_step_begin/end", P.PhaseCallback.on_step_begin)
    P.PhaseCallback.on_step_end = timed("on_step_begin/end", P.PhaseCallback.on_step_end)

    config = json.loads(Path(cfg["phase_config"]).read_text())
    runner = P.PhaseRunner(config)
    t0 = time.perf_counter()
    runner.prepare()
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    status = runner.run()
    t_train = time.perf_counter() - t0
    steps = runner.steps_done
    from llmzero.metrics.store import read_records

    recs = read_records(runner.dir / "metrics.jsonl")
    st = [r["step_time"] for r in recs[1:] if "step_time" in r]
    evaluated = {int(r["step"]) for r in recs if "val/score" in r}
    after = [r["step_time"] for r in recs if int(r["step"]) - 1 in evaluated and "step_time" in r]
    order = ["PhaseCallback.on_log (all our per-step work)", "greedy val eval", "adapter save",
             "save: peft save_pretrained", "save: phase.json + val.json (atomic)", "save: COMPLETE marker",
             "metrics append_record", "progress line (print)", "os.fsync, all callers", "on_step_begin/end"]
    out = {"status": status, "steps": steps, "prepare_s": t_prep, "train_s": t_train,
           "fsync_only_s": {"median": statistics.median(fs), "max": max(fs)},
           "trl_step_time_s": {"median": statistics.median(st) if st else None,
                               "median_right_after_an_eval": statistics.median(after) if after else None},
           "parts": {k: {"calls": len(acc[k]), "total_s": sum(acc[k]), "per_step_s": sum(acc[k]) / max(1, steps),
                         "median_s": statistics.median(acc[k]), "first_s": acc[k][0], "max_s": max(acc[k])}
                     for k in order if k in acc}}
    Path(cfg["profile_out"]).write_text(json.dumps(out, indent=2) + "\n")
    return 0


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
        self.env = probe._env()  # the phase's environment (threads, tokenizers), given to the bare run too
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
        saved = {s for s in range(1, self.args.steps + 1) if s % every_s == 0 or s == self.args.steps}
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
        from llmzero.trainers.trl.backend import PHASE_CONFIG, TRLTrainer, prepare_files

        every_e, every_s = self.modes.get("ours/default", (5, 5))
        out = self.work / "profile"
        shutil.rmtree(out, ignore_errors=True)
        trainer = TRLTrainer(task=self.task, model=self.model_cfg, **{**self.opts, "eval_every": every_e,
                                                                       "save_every": every_s})
        spec = PhaseSpec(node_id=0, hparams=dict(self.hp), output_dir=str(out), max_steps=self.args.steps,
                         eval_every=every_e, save_every=every_s, seed=self.args.seed)
        prepare_files(spec)
        from llmzero.state.atomic import write_json_atomic

        write_json_atomic(out / PHASE_CONFIG, {"spec": spec.to_dict(), "task": trainer.task,
                                               "model": trainer.model, "trainer": trainer.options()})
        pcfg = {"phase_config": str(out / PHASE_CONFIG), "profile_out": str(out / "profile.json")}
        (out / "profile_config.json").write_text(json.dumps(pcfg))
        argv = [sys.executable, str(Path(__file__).resolve()), "--profile-child", str(out / "profile_config.json")]
        with open(out / "log.txt", "w") as logf:
            rc = subprocess.run(argv, check=False, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **trainer._env()}, cwd=str(ROOT),
                                timeout=self.args.timeout_s).returncode
        if rc != 0:
            raise RuntimeError("profile run failed:\n" + (out / "log.txt").read_text(errors="replace")[-3000:])
        prof = json.loads((out / "profile.json").read_text())
        prof.update({"eval_every": every_e, "save_every": every_s})
        return prof


# ------------------------------------------------------------------------------------------------ report


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
    ap.add_argument("--gate", choices=["ours/default", "ours/final"], default="ours/final",
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

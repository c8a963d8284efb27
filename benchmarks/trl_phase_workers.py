"""Subprocess entry points of benchmarks/bench_trl_phase.py, started as
`python benchmarks/bench_trl_phase.py --bare <config.json>` (bare_main: the bare TRL run) and
`... --profile-child <config.json>` (profile_main: our phase in-process, instrumented)."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

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

    # wrappers nest: on_log contains the eval, append_record, the print and the save; fsync is inside several
    P.PhaseSteps.on_log = timed("PhaseCallback.on_log (all our per-step work)", P.PhaseSteps.on_log)
    P.PhaseRunner.evaluate = timed("greedy val eval", P.PhaseRunner.evaluate)
    P.PhaseRunner.save = timed("adapter save", P.PhaseRunner.save)
    PeftModel.save_pretrained = timed("save: peft save_pretrained", PeftModel.save_pretrained)
    # phase.json and val.json are plain writes inside save_adapter now, counted in "adapter save"
    B.mark_checkpoint_complete = timed("save: COMPLETE marker", B.mark_checkpoint_complete)
    P.append_record = timed("metrics append_record", P.append_record)
    P.log.info = timed("progress line (print)", P.log.info)
    os.fsync = timed("os.fsync, all callers", os.fsync)
    make_callback = P.make_callback

    def timed_callback(steps):
        cb = make_callback(steps)
        cb.on_step_begin = timed("on_step_begin/end", cb.on_step_begin)
        cb.on_step_end = timed("on_step_begin/end", cb.on_step_end)
        return cb

    P.make_callback = timed_callback

    import logging

    # as the phase process logs (phase.main)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
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

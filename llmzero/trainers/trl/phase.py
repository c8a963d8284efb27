"""One GRPO phase with TRL, run as its own process: `python -m llmzero.trainers.trl.phase <phase_config.json>`.

phase_config.json (written by TRLTrainer.start) holds {"spec": PhaseSpec dict, "task": task config, "model": model
config, "trainer": trainer options}. The process talks to the search only through files (subprocess_phase.py):
metrics.jsonl, log.txt (this process's stdout), checkpoints/step_<k>/ and result.json.

Model. The base model is loaded, and GRPOTrainer is given the BASE model plus a LoraConfig, so TRL wraps it in a
fresh LoRA itself; when the phase continues a parent (spec.init_checkpoint) or its own crashed run (spec.resume_own),
the adapter WEIGHTS are copied into that fresh adapter afterwards. The optimizer is always new (§3.3: only weights are
resumed). This matters for the KL term: in TRL 1.16 a PeftModel passed in with beta > 0 gets a frozen "ref" copy of its
current adapter, which would measure KL against the parent checkpoint; with a peft_config TRL instead takes the
reference log-probs with the adapters disabled (`use_adapter(model, None)` -> `disable_adapter()`), i.e. the base model,
in every phase, as verl does with LoRA.

Steps. Records are written per optimizer step by `PhaseSteps`: step is phase-local and 1-based (a resumed phase
continues the numbering), global_step = spec.global_offset + step. What is scored and saved at each step is
eval_plan.py's rule: every eval_every steps, at the last step and at a stop, greedy decoding scores val/score on the
fixed val slice (trainer.val_slice prompts), and the whole val split (val_full/score) too when the slice says the
checkpoint may become the phase's best; the adapter is saved at a new whole-split best, the last step, a stop and
every save_every steps. Each checkpoint keeps the scores it was given in val.json.

Stop. A STOP file in the phase directory, or SIGTERM (SubprocessPhase.stop writes the file, then signals), sets the
stop: the current step finishes, is evaluated and saved, and the phase ends with status early_stopped (exit 0). Any
exception ends it as failed with the error text and exit 1.

Layout. `PhaseRunner` owns the phase (task, splits, length, resume point; `prepare` loads the model and builds the
GRPOTrainer), `PhaseSteps` owns what happens at each optimizer step, and the transformers callback only forwards TRL's
events to it, so importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ...metrics import names
from ...metrics.store import MetricSeries, append_record
from ...state.phase_dir import METRICS_FILE, checkpoint_dir, stop_request
from ...tree import PhaseStatus
from ..base import PhaseSpec
from ..child_main import phase_main
from .backend import options_from
from .config_map import grpo_kwargs
from .eval_plan import EvalPlan

log = logging.getLogger("llmzero.phase")

# TRL 1.16 log key -> canonical metric name (llmzero.metrics.names). step_time is measured by the callback.
TRL_KEYS: dict[str, str] = {
    "reward": names.REWARD_MEAN,
    "reward_std": names.REWARD_STD,
    "kl": names.KL,  # only logged when beta (kl_coef) > 0
    "entropy": names.ENTROPY,
    "clip_ratio/region_mean": names.CLIP_RATIO,
    "grad_norm": names.GRAD_NORM,
    "completions/mean_length": names.RESPONSE_LENGTH,
    "completions/clipped_ratio": names.RESPONSE_CLIP_RATIO,
    "frac_reward_zero_std": names.ZERO_STD_FRAC,
    "learning_rate": names.LR,
}


class StopFlag:
    """A graceful stop request, read between steps: SIGTERM, or the STOP file of the phase directory."""

    def __init__(self, phase_dir: Path | None = None) -> None:
        self._event = threading.Event()
        self._dir = phase_dir
        self.reason = ""

    def set(self, *_: Any) -> None:
        self._event.set()

    def is_set(self) -> bool:
        reason = None if self._event.is_set() or self._dir is None else stop_request(self._dir)
        if reason is not None:
            self.reason = reason
            self._event.set()
        return self._event.is_set()

    def _read_reason(self) -> None:
        self.reason = (stop_request(self._dir) or "") if self._dir is not None else ""

    def install(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self._read_reason()
            self.set()

        signal.signal(signal.SIGTERM, handler)


class PhaseSteps:
    """Each optimizer step: one metrics.jsonl record, greedy val evaluation and adapter saves by the rule in the module
    docstring, and the stop. Returns True from on_log when training must end after this step."""

    def __init__(self, *, spec: PhaseSpec, hp: dict[str, Any], start_step: int, total: int, stop: StopFlag,
                 log_every: int, plan: EvalPlan | None = None,
                 evaluate: Callable[[Any, str], dict[str, float]] | None = None,
                 save: Callable[[Any, int, dict[str, float] | None], None] | None = None,
                 eval_test: bool = False) -> None:
        self.spec, self.hp, self.start_step, self.total, self.stop = spec, hp, start_step, total, stop
        self.log_every, self.evaluate, self.save, self.eval_test = max(1, log_every), evaluate, save, eval_test
        # without a plan: the whole val split in flight, at the spec's cadence
        self.plan = plan = plan or EvalPlan(int(spec.eval_every), int(spec.save_every), 0, 0)
        self.metrics = Path(spec.output_dir) / METRICS_FILE
        if start_step > 0 and plan.best_full is None:  # a crashed run resumed: its bests so far still count
            earlier = MetricSeries.load(self.metrics)
            plan.best_full = earlier.best_val()[0]
            plan.best_slice = max(earlier.values(names.VAL_SCORE), default=None) if plan.sliced else None
        self.steps_done = start_step
        self.stopped = False

    def _score(self, model: Any, rec: dict[str, Any]) -> tuple[dict[str, float], bool]:
        """Score this step (the module docstring's rule) into `rec`; the scores a checkpoint keeps, and whether the
        whole split found a new best."""
        plan = self.plan
        val = self.evaluate(model, "val_slice" if plan.sliced else "val")
        rec[names.VAL_SCORE] = val["score"]
        rec.update({names.VAL_PREFIX + k: v for k, v in val.items() if k != "score"})
        kept, new_best = {"prompts": float(plan.slice_size), **val}, False
        if not plan.sliced:
            new_best = plan.take_full(val["score"])
        elif plan.may_be_best(val["score"]):
            full = self.evaluate(model, "val")
            rec[names.VAL_FULL_SCORE] = full["score"]
            rec.update({names.VAL_FULL_PREFIX + k: v for k, v in full.items() if k != "score"})
            kept, new_best = {"prompts": float(plan.full_size), **full}, plan.take_full(full["score"])
        if self.eval_test:
            rec[names.TEST_SCORE] = self.evaluate(model, "test")["score"]
        return kept, new_best

    def on_log(self, trainer_step: int, logs: dict[str, Any], model: Any, step_time: float | None = None) -> bool:
        sp = self.spec
        step = self.start_step + int(trainer_step)
        rec: dict[str, Any] = {names.STEP: step, names.GLOBAL_STEP: sp.global_offset + step}
        for key, name in TRL_KEYS.items():
            v = logs.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rec[name] = float(v)
        if step_time is not None:
            rec[names.STEP_TIME] = step_time
        diverged = [k for k in (names.GRAD_NORM, names.KL, names.ENTROPY) if k in rec and not math.isfinite(rec[k])]
        if diverged or not math.isfinite(float(logs.get("loss", 0.0))):
            append_record(self.metrics, rec)  # the agents see the blow-up, then the phase fails
            bad = ", ".join(f"{k}={rec[k]}" for k in diverged) or f"loss={logs.get('loss')}"
            raise FloatingPointError(f"{bad} at step {step}: training diverged (learning_rate="
                                     f"{self.hp['learning_rate']:g}, grad_clip={self.hp['grad_clip']:g})")
        stopping = self.stop.is_set()
        final = step >= self.total or stopping
        kept, new_best = None, False
        if self.evaluate is not None and self.plan.evaluates(step, final):
            t = time.monotonic()
            kept, new_best = self._score(model, rec)
            log.info("eval step %d: val/score=%.4f%s %s (%.1fs)", step, rec[names.VAL_SCORE],
                     f" val_full/score={rec[names.VAL_FULL_SCORE]:.4f}" if names.VAL_FULL_SCORE in rec else "",
                     " ".join(f"{k}={v:.3f}" for k, v in kept.items() if k not in ("score", "prompts")),
                     time.monotonic() - t)
        append_record(self.metrics, rec)
        self.steps_done = step
        if step % self.log_every == 0 or final:
            log.info("step %d/%d global=%d %s", step, self.total, rec[names.GLOBAL_STEP],
                     " ".join(f"{k}={v:.4g}" for k, v in rec.items() if k not in (names.STEP, names.GLOBAL_STEP)
                              and not k.startswith((names.VAL_PREFIX, names.VAL_FULL_PREFIX))))
        saved = False
        if self.save is not None and self.plan.saves(step, final, new_best):
            self.save(model, step, kept)
            saved = True
        if self.stop.is_set():  # requested now or during this step's eval/save
            if not saved and self.save is not None:
                self.save(model, step, None)
            self.stopped = step < self.total
            return True
        return False


def make_callback(steps: PhaseSteps) -> Any:
    """The transformers TrainerCallback that times each step and hands TRL's logs to `steps`."""
    from transformers import TrainerCallback

    class PhaseCallback(TrainerCallback):
        def __init__(self) -> None:
            self._t0: float | None = None
            self._step_time: float | None = None

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if self._t0 is not None:
                self._step_time = time.monotonic() - self._t0

        def on_log(self, args, state, control, logs=None, model=None, **kwargs):
            if logs and "loss" in logs and "train_runtime" not in logs:
                if steps.on_log(state.global_step, logs, model, self._step_time):
                    control.should_training_stop = True
            return control

    return PhaseCallback()


class PhaseRunner:
    """One phase: the task and its splits, the length and resume point (at construction), the model and the
    GRPOTrainer (`prepare`), training (`run`)."""

    def __init__(self, config: dict[str, Any], stop: StopFlag | None = None) -> None:
        from ...tasks.base import build_task
        from ...tasks.val_slice import stratified_slice

        self.spec = PhaseSpec.from_dict(config["spec"])
        self.task_cfg: dict[str, Any] = dict(config.get("task") or {})
        self.model_cfg: dict[str, Any] = dict(config.get("model") or {})
        self.opts, self.passthrough = options_from(dict(config.get("trainer") or {}))
        self.dir = Path(self.spec.output_dir)
        self.stop = stop or StopFlag(self.dir)
        self.hp = dict(self.spec.hparams)
        self.task = build_task(self.task_cfg)
        splits = self.task.splits()
        if getattr(self.task, "note", ""):
            log.info("%s", self.task.note)  # how the benchmark's rows were split
        self.examples = {"train": splits["train"], "val": splits["val"], "test": splits.get("test", []),
                         "val_slice": stratified_slice(splits["val"], self.opts.val_slice, int(self.spec.seed))}
        if int(self.spec.max_steps) < 1:
            raise ValueError(f"max_steps={self.spec.max_steps} is not allowed: a phase needs at least 1 optimizer step")
        self.total = int(self.spec.max_steps)
        self.start_step, self.init_from = self.spec.start_point()
        self.steps = PhaseSteps(spec=self.spec, hp=self.hp, start_step=self.start_step, total=self.total,
                                stop=self.stop, log_every=self.opts.log_every, evaluate=self.evaluate, save=self.save,
                                plan=EvalPlan(int(self.spec.eval_every), int(self.spec.save_every),
                                              len(self.examples["val_slice"]), len(self.examples["val"])),
                                eval_test=bool(self.opts.eval_test) and bool(self.examples["test"]))
        self.trainer: Any = None  # the GRPOTrainer, built by prepare()
        self.tokenizer: Any = None
        self.base_path: str | None = None

    @property
    def steps_done(self) -> int:
        return self.steps.steps_done

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> PhaseRunner:
        if self.start_step >= self.total:
            return self
        import torch
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback
        from trl import GRPOConfig, GRPOTrainer

        from ...tasks.base import Example, task_tool
        from .model import load_adapter_weights, load_base, lora_config, rendered, select_device, select_dtype

        if self.opts.torch_threads > 0:
            torch.set_num_threads(self.opts.torch_threads)
        device = select_device(self.opts.device)
        dtype = select_dtype(self.opts.dtype, device)
        use_cpu = not device.startswith("cuda")
        base, tokenizer, path = load_base(self.model_cfg, self.task, device=device, dtype=dtype)
        self.tokenizer, self.base_path = tokenizer, path
        self.examples = rendered(self.examples, tokenizer, self.model_cfg)  # the chat template, for a model with one
        if self.examples["train"]:
            log.info("first train prompt as the model reads it: %r", self.examples["train"][0].prompt[:300])
        log.info("base model %s from %s on %s (%s)", self.model_cfg.get("name", "?"), path, device, dtype)

        data = Dataset.from_list([{"prompt": ex.prompt, "answer": ex.answer, "subtask": ex.subtask}
                                  for ex in self.examples["train"]])
        task = self.task

        def task_reward(prompts: list[str], completions: list[str], answer: list[str], subtask: list[str],
                        **_: Any) -> list[float]:
            return [float(task.reward(c, Example(prompt=p, answer=a, subtask=s)))
                    for p, c, a, s in zip(prompts, completions, answer, subtask)]

        kwargs = grpo_kwargs(
            self.hp, max_steps=self.total - self.start_step, output_dir=str(self.dir / ".trl"),
            # a resumed run draws a different prompt order, so it does not replay the prompts it already trained on
            seed=int(self.spec.seed) + self.start_step, use_cpu=use_cpu,
            loss_type=self.opts.loss_type, micro_batch_size=self.opts.micro_batch_size,
            gradient_checkpointing=(self.opts.gradient_checkpointing
                                    or bool(self.model_cfg.get("gradient_checkpointing"))),
            bf16=(not use_cpu) and dtype == torch.bfloat16,
            passthrough={k: v for k, v in self.spec.hparams.items() if k in set(self.passthrough)},
        )
        args = GRPOConfig(**kwargs)
        log.info("GRPOConfig " + " ".join(f"{k}={getattr(args, k)}" for k in (
            "learning_rate", "beta", "temperature", "num_generations", "epsilon", "epsilon_high", "max_grad_norm",
            "entropy_coef", "scale_rewards", "loss_type", "max_completion_length", "per_device_train_batch_size",
            "gradient_accumulation_steps", "steps_per_generation", "generation_batch_size", "max_steps", "seed",
            "gradient_checkpointing", "bf16")))
        n = int(self.hp["batch_size"]) * int(self.hp["rollouts"])
        if args.generation_batch_size != n:  # the batch semantics of config_map; TRL must agree
            raise RuntimeError(f"GRPOConfig.generation_batch_size={args.generation_batch_size}, expected "
                               f"batch_size × rollouts = {n}")
        tool = task_tool(task)
        rollout_func = None
        if tool is not None:  # the task's search tool in every rollout (retrieval_rollouts.py)
            from ...models.loading import eos_token_ids
            from .retrieval_rollouts import make_rollout_func

            rollout_func = make_rollout_func(tool, tokenizer, int(args.max_completion_length),
                                             eos_token_ids(base, tokenizer))
            log.info("search tool: top %d documents, at most %d searches per response", tool.topk, tool.max_turns)
        self.trainer = GRPOTrainer(
            model=base, reward_funcs=task_reward, args=args, train_dataset=data, processing_class=tokenizer,
            peft_config=lora_config(int(self.hp["lora_rank"])), callbacks=[make_callback(self.steps)],
            rollout_func=rollout_func,
        )
        self.trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw log dicts
        peft_model = self.trainer.model
        if "ref" in getattr(peft_model, "peft_config", {}):
            raise RuntimeError("TRL created a 'ref' adapter: the KL reference would not be the base model")
        if self.init_from:
            load_adapter_weights(peft_model, self.init_from)
            log.info("loaded adapter weights from %s (fresh optimizer)", self.init_from)
        else:
            log.info("fresh LoRA adapter on the base model")
        return self

    # -- training ------------------------------------------------------------------------------
    def run(self) -> str:
        sp = self.spec
        if self.start_step >= self.total:
            log.info("nothing to do: checkpoint step_%d already reaches %d steps", self.start_step, self.total)
            return PhaseStatus.COMPLETED
        if self.trainer is None:
            self.prepare()
        log.info("phase node=%s steps %d..%d (global offset %d) hparams=%s", sp.node_id, self.start_step + 1,
                 self.total, sp.global_offset, json.dumps(self.hp, default=str))
        if self.stop.is_set():
            log.info("stop requested before training started: %s", self.stop.reason or "SIGTERM")
            return PhaseStatus.EARLY_STOPPED
        self.trainer.train()
        if self.steps.stopped:
            log.info("stopped at step %d: %s", self.steps_done, self.stop.reason or "SIGTERM")
            return PhaseStatus.EARLY_STOPPED
        if self.steps_done < self.total:
            raise RuntimeError(f"training ended after step {self.steps_done} of {self.total}")
        log.info("completed %d steps", self.steps_done)
        return PhaseStatus.COMPLETED

    # -- evaluation and saving (PhaseSteps calls these) ----------------------------------------
    def eval_max_new_tokens(self) -> int:
        return int(self.opts.eval_max_new_tokens or self.model_cfg.get("eval_max_new_tokens")
                   or self.hp["response_length"])

    def evaluate(self, model: Any, split: str) -> dict[str, float]:
        from .model import adapter_merged, greedy_scores

        with adapter_merged(model):
            return greedy_scores(model, self.tokenizer, self.task, self.examples[split], self.eval_max_new_tokens(),
                                 self.opts.eval_batch_size)

    def save(self, model: Any, step: int, val: dict[str, float] | None) -> None:
        from .model import save_adapter

        meta = {"node_id": self.spec.node_id, "step": step, "global_step": self.spec.global_offset + step,
                "hparams": self.hp, "base_model": self.model_cfg.get("path"), "base_model_path": self.base_path,
                "init_checkpoint": self.init_from, "eval_max_new_tokens": self.eval_max_new_tokens()}
        save_adapter(model, checkpoint_dir(self.dir, step), meta, val)
        log.info("saved adapter checkpoints/step_%d", step)


def main(argv: list[str] | None = None) -> int:
    def start(config: dict[str, Any], spec: PhaseSpec) -> PhaseRunner:
        stop = StopFlag(spec.dir)
        stop.install()
        return PhaseRunner(config, stop)  # prepared by run(), so a failure there still reports the resume step

    def cleanup(spec: PhaseSpec) -> None:
        try:
            (spec.dir / ".trl").rmdir()  # TRL's output_dir; it stays empty since TRL saves nothing
        except OSError:
            pass

    return phase_main(argv, "llmzero.trainers.trl.phase", start, cleanup)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

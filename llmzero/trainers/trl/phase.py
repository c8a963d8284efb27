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

Steps. Records are written per optimizer step by `PhaseCallback`: step is phase-local and 1-based (a resumed phase
continues the numbering), global_step = spec.global_offset + step. Evaluation and saving rule, at step s of T:

    evaluate (greedy, val split)  if s % eval_every == 0 or s % save_every == 0 or s == T or a stop was requested
    save the adapter              if s % save_every == 0 or s == T or a stop was requested

so every checkpoint carries its val score (val.json), and with save_every dividing eval_every (e.g. equal, the
default) every evaluated step, the best-val step included, has a checkpoint.

Stop. SIGTERM (SubprocessPhase.stop) sets a flag: the current step finishes, is evaluated and saved, and the phase
ends with status early_stopped (exit 0). Any exception ends it as failed with the error text and exit 1.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ...metrics import names as N
from ...metrics.store import append_record
from ...search.node import NodeStatus
from ..base import PhaseSpec, checkpoint_dir, list_checkpoints
from ..subprocess_phase import child_config, write_result
from .config_map import grpo_kwargs, resolve_hparams, total_steps

# TRL 1.16 log key -> canonical metric name (llmzero.metrics.names). step_time is measured by the callback.
TRL_KEYS: dict[str, str] = {
    "reward": N.REWARD_MEAN,
    "reward_std": N.REWARD_STD,
    "kl": N.KL,  # only logged when beta (kl_coef) > 0
    "entropy": N.ENTROPY,
    "clip_ratio/region_mean": N.CLIP_RATIO,
    "grad_norm": N.GRAD_NORM,
    "completions/mean_length": N.RESPONSE_LENGTH,
    "completions/clipped_ratio": N.RESPONSE_CLIP_RATIO,
    "frac_reward_zero_std": N.ZERO_STD_FRAC,
    "learning_rate": N.LR,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def format_error(exc: BaseException, frames: int = 12) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip().splitlines()
    return f"{type(exc).__name__}: {exc}\n--- traceback (last lines) ---\n" + "\n".join(tb[-frames:])


class StopFlag:
    """Set by SIGTERM; read between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, *_: Any) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self, phase_dir: Path) -> None:
        def handler(signum: int, frame: Any) -> None:
            try:
                self.reason = (phase_dir / "STOP").read_text().strip()
            except OSError:
                self.reason = ""
            self.set()

        signal.signal(signal.SIGTERM, handler)


class PhaseRunner:
    """Builds the task, the base model and the GRPOTrainer (`prepare`), then trains (`run`)."""

    def __init__(self, config: dict[str, Any], stop: StopFlag | None = None) -> None:
        self.config = config
        self.spec = PhaseSpec.from_dict(config["spec"])
        self.task_cfg: dict[str, Any] = dict(config.get("task") or {})
        self.model_cfg: dict[str, Any] = dict(config.get("model") or {})
        self.opts: dict[str, Any] = dict(config.get("trainer") or {})
        self.stop = stop or StopFlag()
        self.dir = Path(self.spec.output_dir)
        self.hp = resolve_hparams(self.spec.hparams)
        self.trainer: Any = None
        self.tokenizer: Any = None
        self.base_path: str | None = None
        self.start_step = 0
        self.total = 0
        self.init_from: str | None = None
        self.steps_done = 0

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> PhaseRunner:
        import torch
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from ...tasks.base import Example, build_task
        from .model import (
            load_adapter_weights,
            load_base,
            lora_config,
            select_device,
            select_dtype,
        )

        threads = int(self.opts.get("torch_threads") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        self.task = build_task(self.task_cfg)
        splits = self.task.splits()
        self.train_examples, self.val_examples = splits["train"], splits["val"]
        self.test_examples = splits.get("test", [])
        steps_per_epoch = max(1, math.ceil(len(self.train_examples) / max(1, int(self.hp["batch_size"]))))
        self.total = total_steps(self.spec.max_steps, self.hp, steps_per_epoch)

        own = list_checkpoints(self.dir) if self.spec.resume_own else []
        own = [s for s in own if s <= self.total]
        if own:
            self.start_step = own[-1]
            self.init_from = str(checkpoint_dir(self.dir, self.start_step))
        else:
            self.start_step = 0
            self.init_from = self.spec.init_checkpoint
        self.steps_done = self.start_step
        if self.start_step >= self.total:
            return self

        device = select_device(str(self.opts.get("device") or "auto"))
        dtype = select_dtype(self.opts.get("dtype"), device)
        use_cpu = not device.startswith("cuda")
        base, tokenizer, path = load_base(self.model_cfg, self.task, device=device, dtype=dtype)
        self.tokenizer, self.base_path = tokenizer, path
        log(f"base model {self.model_cfg.get('name', '?')} from {path} on {device} ({dtype})")

        data = Dataset.from_list([{"prompt": ex.prompt, "answer": ex.answer, "subtask": ex.subtask}
                                  for ex in self.train_examples])
        task = self.task

        def task_reward(prompts: list[str], completions: list[str], answer: list[str], subtask: list[str],
                        **_: Any) -> list[float]:
            return [float(task.reward(c, Example(prompt=p, answer=a, subtask=s)))
                    for p, c, a, s in zip(prompts, completions, answer, subtask)]

        kwargs = grpo_kwargs(
            self.hp, max_steps=self.total - self.start_step, output_dir=str(self.dir / ".trl"),
            # a resumed run draws a different prompt order, so it does not replay the prompts it already trained on
            seed=int(self.spec.seed) + self.start_step, use_cpu=use_cpu,
            loss_type=str(self.opts.get("loss_type") or "dapo"),
            micro_batch_size=int(self.opts.get("micro_batch_size") or 0),
            gradient_checkpointing=bool(self.opts.get("gradient_checkpointing", False)),
            bf16=(not use_cpu) and dtype == torch.bfloat16,
            passthrough={k: v for k, v in self.spec.hparams.items() if k in set(self.opts.get("passthrough") or [])},
        )
        args = GRPOConfig(**kwargs)
        log("GRPOConfig " + " ".join(f"{k}={getattr(args, k)}" for k in (
            "learning_rate", "beta", "temperature", "num_generations", "epsilon", "epsilon_high", "max_grad_norm",
            "entropy_coef", "scale_rewards", "loss_type", "max_completion_length", "per_device_train_batch_size",
            "gradient_accumulation_steps", "steps_per_generation", "generation_batch_size", "max_steps", "seed")))
        n = int(self.hp["batch_size"]) * int(self.hp["rollouts"])
        if args.generation_batch_size != n:  # the batch semantics of config_map; TRL must agree
            raise RuntimeError(f"GRPOConfig.generation_batch_size={args.generation_batch_size}, expected "
                               f"batch_size × rollouts = {n}")
        self.callback = PhaseCallback(self)
        self.trainer = GRPOTrainer(
            model=base, reward_funcs=task_reward, args=args, train_dataset=data, processing_class=tokenizer,
            peft_config=lora_config(int(self.hp["lora_rank"])), callbacks=[self.callback],
        )
        from transformers.trainer_callback import PrinterCallback

        self.trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw log dicts
        peft_model = self.trainer.model
        if "ref" in getattr(peft_model, "peft_config", {}):
            raise RuntimeError("TRL created a 'ref' adapter: the KL reference would not be the base model")
        if self.init_from:
            load_adapter_weights(peft_model, self.init_from)
            log(f"loaded adapter weights from {self.init_from} (fresh optimizer)")
        else:
            log("fresh LoRA adapter on the base model")
        return self

    # -- training ------------------------------------------------------------------------------
    def run(self) -> str:
        sp = self.spec
        if self.start_step >= self.total:
            log(f"nothing to do: checkpoint step_{self.start_step} already reaches {self.total} steps")
            return NodeStatus.COMPLETED
        log(f"phase node={sp.node_id} steps {self.start_step + 1}..{self.total} (global offset {sp.global_offset}) "
            f"hparams={json.dumps(self.hp, default=str)}")
        if self.stop.is_set():
            log(f"stop requested before training started: {self.stop.reason or 'SIGTERM'}")
            return NodeStatus.EARLY_STOPPED
        self.trainer.train()
        if self.callback.stopped:
            log(f"stopped at step {self.steps_done}: {self.stop.reason or 'SIGTERM'}")
            return NodeStatus.EARLY_STOPPED
        if self.steps_done < self.total:
            raise RuntimeError(f"training ended after step {self.steps_done} of {self.total}")
        log(f"completed {self.steps_done} steps")
        return NodeStatus.COMPLETED

    # -- evaluation and saving (called by the callback) ----------------------------------------
    def eval_max_new_tokens(self) -> int:
        return int(self.opts.get("eval_max_new_tokens") or self.hp["response_length"])

    def evaluate(self, model: Any, examples: list[Any]) -> dict[str, float]:
        from .model import greedy_scores

        return greedy_scores(model, self.tokenizer, self.task, examples, self.eval_max_new_tokens(),
                             int(self.opts.get("eval_batch_size") or 64))

    def save(self, model: Any, step: int, val: dict[str, float] | None) -> None:
        from .model import save_adapter

        meta = {"node_id": self.spec.node_id, "step": step, "global_step": self.spec.global_offset + step,
                "hparams": self.hp, "base_model": self.model_cfg.get("path"), "base_model_path": self.base_path,
                "init_checkpoint": self.init_from,
                "eval_max_new_tokens": self.eval_max_new_tokens()}
        save_adapter(model, checkpoint_dir(self.dir, step), meta, val)
        log(f"saved adapter checkpoints/step_{step}")


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class PhaseCallback(_callback_base()):  # type: ignore[misc]
    """One metrics.jsonl record per optimizer step (canonical names), greedy val eval and adapter saves."""

    def __init__(self, runner: PhaseRunner) -> None:
        self.r = runner
        self._t0: float | None = None
        self._step_time: float | None = None
        self.stopped = False

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is not None:
            self._step_time = time.monotonic() - self._t0

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not logs or "loss" not in logs or "train_runtime" in logs:
            return control
        r, sp = self.r, self.r.spec
        step = r.start_step + int(state.global_step)
        rec: dict[str, Any] = {N.STEP: step, N.GLOBAL_STEP: sp.global_offset + step}
        for key, name in TRL_KEYS.items():
            v = logs.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rec[name] = float(v)
        if self._step_time is not None:
            rec[N.STEP_TIME] = self._step_time
        diverged = [k for k in (N.GRAD_NORM, N.KL, N.ENTROPY) if k in rec and not math.isfinite(rec[k])]
        if diverged or not math.isfinite(float(logs.get("loss", 0.0))):
            append_record(r.dir / "metrics.jsonl", rec)  # the agents see the blow-up, then the phase fails
            bad = ", ".join(f"{k}={rec[k]}" for k in diverged) or f"loss={logs.get('loss')}"
            raise FloatingPointError(f"{bad} at step {step}: training diverged (learning_rate="
                                     f"{r.hp['learning_rate']:g}, grad_clip={r.hp['grad_clip']:g})")
        stopping = r.stop.is_set()
        final = step >= r.total or stopping
        every_e, every_s = max(1, int(sp.eval_every)), max(1, int(sp.save_every))
        val = None
        if step % every_e == 0 or step % every_s == 0 or final:
            t = time.monotonic()
            val = r.evaluate(model, r.val_examples)
            rec[N.VAL_SCORE] = val["score"]
            rec.update({N.VAL_PREFIX + k: v for k, v in val.items() if k != "score"})
            if r.opts.get("eval_test") and r.test_examples:
                rec[N.TEST_SCORE] = r.evaluate(model, r.test_examples)["score"]
            log(f"eval step {step}: val/score={val['score']:.4f} "
                + " ".join(f"{k}={v:.3f}" for k, v in val.items() if k != "score")
                + f" ({time.monotonic() - t:.1f}s)")
        append_record(r.dir / "metrics.jsonl", rec)
        r.steps_done = step
        every_log = max(1, int(r.opts.get("log_every") or 1))
        if step % every_log == 0 or final:
            log(f"step {step}/{r.total} global={rec[N.GLOBAL_STEP]} "
                + " ".join(f"{k}={v:.4g}" for k, v in rec.items() if k not in (N.STEP, N.GLOBAL_STEP)
                           and not k.startswith(N.VAL_PREFIX)))
        saved = False
        if step % every_s == 0 or final:
            r.save(model, step, val)
            saved = True
        if r.stop.is_set():  # requested now or during this step's eval/save
            if not saved:
                r.save(model, step, None)
            self.stopped = step < r.total
            control.should_training_stop = True
        return control


def main(argv: list[str] | None = None) -> int:
    config = child_config(argv, "python -m llmzero.trainers.trl.phase <phase_config.json>")
    if config is None:
        return 2
    spec = PhaseSpec.from_dict(config["spec"])
    stop = StopFlag()
    stop.install(spec.dir)
    runner = PhaseRunner(config, stop)
    try:
        status = runner.prepare().run()
    except BaseException as exc:  # noqa: BLE001 - every failure must reach result.json
        log("phase failed:\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        write_result(spec.dir, NodeStatus.FAILED, error=format_error(exc), steps_done=runner.steps_done)
        return 1
    finally:
        try:
            (spec.dir / ".trl").rmdir()  # TRL's output_dir; it stays empty since TRL saves nothing
        except OSError:
            pass
    write_result(spec.dir, status, steps_done=runner.steps_done)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

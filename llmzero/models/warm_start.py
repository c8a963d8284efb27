"""The warm start of `builtin:tiny`: the SFT pool grown from the task's other seeds, a held-out probe, and
TRL's SFTTrainer stopping once the probe accuracy reaches its target (tiny.py builds and caches the model)."""

from __future__ import annotations

import contextlib
import inspect
import tempfile
from collections.abc import Iterator
from typing import Any

EVAL_MAX_NEW_TOKENS = 8  # the arithmetic answers' length: greedy scoring of the probe and of a build
PROBE_PER_SUBTASK = 48  # held-out warm-start examples per subtask for the early-stopping probe


def sft_examples(task: Any, pool_size: int = 0) -> list[Any]:
    """The warm-start pool: the task's train split, grown to `pool_size` examples when that is larger.

    A few hundred examples teach a tiny model to memorise, not to compute, so the pool is grown with
    the splits of the same task built with other seeds (seed+1, seed+2, ...; same class and arguments,
    read back from the task's attributes), deduplicated by prompt and never containing a prompt of the
    task's own val or test split. A task without a seed, or whose other seeds add nothing new (a fixed
    dataset), keeps its own train split.
    """
    splits = task.splits()
    train = list(splits["train"])
    if not pool_size or pool_size <= len(train):
        return train
    seed = getattr(task, "seed", None)
    if not isinstance(seed, int) or isinstance(seed, bool):
        return train
    seen = {ex.prompt for k in ("val", "test") for ex in splits.get(k, [])}
    pool = []
    for ex in train:
        if ex.prompt not in seen:
            seen.add(ex.prompt)
            pool.append(ex)
    barren = 0
    for k in range(1, 1000):
        if len(pool) >= pool_size:
            break
        other = _rebuild(task, seed=seed + k)
        if other is None:
            break
        try:
            other_splits = other.splits()
        except Exception:  # noqa: BLE001 - any failure: keep what we have
            break
        added = 0
        for name in ("train", "val", "test"):
            for ex in other_splits.get(name, []):
                if ex.prompt not in seen:
                    seen.add(ex.prompt)
                    pool.append(ex)
                    added += 1
        barren = 0 if added else barren + 1
        if barren >= 3:
            break
    return pool[:pool_size]


def balance_subtasks(pool: list[Any]) -> list[Any]:
    """The pool with each subtask's examples repeated (in order, cycling) up to the largest subtask's count.

    A subtask with few distinct prompts (the arithmetic task has 720 one-by-two-digit products against 8100
    two-digit sums) is otherwise a small share of a grown pool, and the warm start barely learns it.
    """
    by_subtask: dict[str, list[Any]] = {}
    for ex in pool:
        by_subtask.setdefault(ex.subtask, []).append(ex)
    if not by_subtask:
        return pool
    target = max(len(v) for v in by_subtask.values())
    grown = {s: [v[i % len(v)] for i in range(target)] for s, v in by_subtask.items()}
    # interleaved, so any prefix of the pool keeps the balance
    return [grown[s][i] for i in range(target) for s in grown]


def _rebuild(task: Any, **overrides: Any) -> Any | None:
    """A new instance of the task's class with the same arguments (read from its attributes, sizes from
    `task.sizes`) except `overrides`, or None when they cannot be recovered."""
    cls = type(task)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    sizes = getattr(task, "sizes", None) or {}
    kwargs: dict[str, Any] = {}
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in overrides:
            kwargs[name] = overrides[name]
        elif name.endswith("_size") and name[:-5] in sizes:
            kwargs[name] = sizes[name[:-5]]
        elif hasattr(task, name):
            kwargs[name] = getattr(task, name)
        elif p.default is p.empty:
            return None
    if any(k not in kwargs for k in overrides):
        return None
    try:
        return cls(**kwargs)
    except Exception:  # noqa: BLE001
        return None


def split_probe(pool: list[Any], per_subtask: int = PROBE_PER_SUBTASK) -> tuple[list[Any], list[Any]]:
    """(train, probe): the probe takes up to `per_subtask` examples of each subtask from the end of the
    pool (at most a tenth of that subtask's examples), so the probe's mix matches the val split's."""
    counts: dict[str, int] = {}
    for ex in pool:
        counts[ex.subtask] = counts.get(ex.subtask, 0) + 1
    quota = {s: min(per_subtask, n // 10) for s, n in counts.items()}
    probe_idx: set[int] = set()
    for i in range(len(pool) - 1, -1, -1):
        sub = pool[i].subtask
        if quota[sub] > 0:
            quota[sub] -= 1
            probe_idx.add(i)
    train = [ex for i, ex in enumerate(pool) if i not in probe_idx]
    probe = [ex for i, ex in enumerate(pool) if i in probe_idx]
    return train, probe


# Warm-start sequences longer than this (in tokens) train with SDPA attention rather than eager (see run_sft).
SDPA_FROM_TOKENS = 256


def run_sft(model: Any, tokenizer: Any, task: Any, train: list[Any], probe: list[Any], *, steps: int, lr: float,
         scheduler: str, batch_size: int, target: float, eval_every: int, seed: int,
         progress: bool) -> tuple[Any, dict[str, Any]]:
    """Supervised warm start with TRL's SFTTrainer: prompt -> answer (task.reference) + eos, loss on the answer only.

    Every `eval_every` steps the greedy accuracy on the probe examples (held out from training) is
    measured; training stops as soon as it reaches `target`, which leaves the model partly competent.
    """
    import datasets
    import transformers
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from .loading import greedy_complete

    record: dict[str, Any] = {"steps": 0, "train_examples": len(train), "probe_examples": len(probe),
                              "target": target, "probe": [], "stopped_at_target": False}
    prompts = [ex.prompt for ex in probe]

    def probe_score(m: Any) -> float:
        if not probe:
            return 0.0
        return task.score(greedy_complete(m, tokenizer, prompts, EVAL_MAX_NEW_TOKENS), probe)["score"]

    bar = _Bar(steps) if progress else None

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            if bar is not None:
                bar.update(step)
            if target and eval_every and probe and (step % eval_every == 0 or step == steps):
                acc = probe_score(model)
                record["probe"].append([step, round(acc, 4)])
                if bar is not None:
                    bar.update(step, probe=acc)
                if acc >= target:
                    record["stopped_at_target"] = True
                    control.should_training_stop = True
            return control

    # a benchmark's answer may be a packed record (llmzero/tasks/benchmark.py): it says what a right completion is
    completion_of = getattr(task, "reference", None) or (lambda ex: ex.answer)
    data = Dataset.from_list([{"prompt": ex.prompt, "completion": completion_of(ex)} for ex in train])
    # room for the longest example (a benchmark's prompts run to hundreds of characters); the arithmetic task's fit 128
    longest = max((len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in data), default=0)
    if longest > SDPA_FROM_TOKENS:
        # eager attention is quickest for short sequences only: at a benchmark's ~600 tokens SDPA's fused kernel
        # trains this model about 3 times faster on one CPU thread (same maths; the saved model does not record it)
        model.set_attn_implementation("sdpa")
    with tempfile.TemporaryDirectory(prefix="llmzero-sft-") as tmp, quiet_hf_logs(datasets, transformers):
        args = SFTConfig(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            lr_scheduler_type=scheduler,
            warmup_steps=max(1, steps // 20),
            weight_decay=0.0,
            max_grad_norm=1.0,
            gradient_checkpointing=False,  # TRL turns it on by default; pure overhead for a model this small
            completion_only_loss=True,
            packing=False,
            max_length=max(128, longest + 1),
            use_cpu=True,
            bf16=False,
            fp16=False,
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=seed,
            data_seed=seed,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             callbacks=[Watch()])
        trainer.remove_callback(PrinterCallback)  # no end-of-training metrics dump on stdout
        try:
            if bar is not None:
                bar.start()
            trainer.train()
        finally:
            if bar is not None:
                bar.stop()
        model = trainer.model
        record["steps"] = trainer.state.global_step
    return model, record


class _Bar:
    """A rich progress bar for the warm start (transient: it disappears when done)."""

    def __init__(self, total: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("[bold]building builtin:tiny[/] warm start"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("probe acc {task.fields[probe]}"),
                                 TimeElapsedColumn(), transient=True)
        self.task_id = self.progress.add_task("sft", total=total, probe="-")

    def start(self) -> None:
        self.progress.start()

    def update(self, step: int, probe: float | None = None) -> None:
        fields = {} if probe is None else {"probe": f"{probe:.2f}"}
        self.progress.update(self.task_id, completed=step, **fields)

    def stop(self) -> None:
        self.progress.stop()


@contextlib.contextmanager
def quiet_hf_logs(datasets_mod: Any = None, transformers_mod: Any = None) -> Iterator[None]:
    """Silence datasets' map bars and transformers' info logs and weight-loading/saving bars."""
    if datasets_mod is None:
        import datasets as datasets_mod
    if transformers_mod is None:
        import transformers as transformers_mod
    tlog = transformers_mod.utils.logging
    ds_bars = datasets_mod.is_progress_bar_enabled()
    tf_bars = tlog.is_progress_bar_enabled()
    verbosity = tlog.get_verbosity()
    datasets_mod.disable_progress_bar()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        tlog.set_verbosity(verbosity)
        if tf_bars:
            tlog.enable_progress_bar()
        if ds_bars:
            datasets_mod.enable_progress_bar()

"""Preparing and running one verl process: the task's files, the overrides, and `python -m <driver> <overrides>` with
its file logger tailed. Shared by a phase (phase.py) and an evaluation (evaluate.py).

The driver is `verl.trainer.main_ppo` (trainer.driver; tests substitute a labelled fake). It runs as a child process
with verl's own Hydra command line, and it calls `ray.init()` itself: inside a Ray job (cluster=ray) RAY_ADDRESS is set,
so verl's driver joins the cluster that runs the job; on cluster=local it starts or joins a Ray instance on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...config.verl_trainer import VerlTrainerConfig
from ...metrics.store import MetricsTail
from ...tasks.base import Example, build_task, task_tool
from .compose import checked
from .data import subtask_counts, write_reward_module, write_search_configs, write_split
from ..child_main import die_with_parent
from .overrides import LOGGER_ENV, RunFiles, SearchRun, Topology, logger_path

POLL_S = 1.0
TOKEN_MARGIN = 16  # tokens added to the longest measured prompt


def options_from(raw: dict[str, Any]) -> tuple[VerlTrainerConfig, Topology]:
    """The trainer options and the phase's topology a phase or evaluation process was given (backend.options())."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(VerlTrainerConfig)}
    opts = VerlTrainerConfig(**{k: v for k, v in raw.items() if k in known})
    return opts, Topology.from_cluster(raw.get("cluster") or {})


@dataclass
class TaskFiles:
    """The task's splits on disk for verl, and what the metrics mapping needs to know about them."""

    task: Any
    splits: dict[str, list[Example]]
    files: dict[str, str]
    reward_module: str
    counts: dict[str, dict[str, int]]
    search: SearchRun | None  # the task's search tool for verl's rollouts; None without one


def task_files(task_cfg: dict[str, Any], folder: Path, phase_config: str,
               wanted: tuple[str, ...] = ("train", "val", "test")) -> TaskFiles:
    """The task's splits, reward module and (with a search tool) tool files under `folder`; the reward and the tool
    build the task from `phase_config` inside verl's workers."""
    task = build_task(task_cfg)
    raw = task.splits()
    splits = {k: list(raw.get(k) or []) for k in wanted if raw.get(k)}
    files = {k: str(write_split(folder / "data" / f"{k}.parquet", v, k, task.name)) for k, v in splits.items()}
    tool = task_tool(task)  # built here too, so a retriever that cannot be built fails before verl starts
    search = None
    if tool is not None:
        tools, loops = write_search_configs(folder, phase_config)
        search = SearchRun(tool_config=str(tools), agent_loops=str(loops), max_turns=int(tool.max_turns))
    return TaskFiles(task=task, splits=splits, files=files, reward_module=str(write_reward_module(folder)),
                     counts={k: subtask_counts(v) for k, v in splits.items()}, search=search)


def model_inputs(model_cfg: dict[str, Any], task: Any, examples: list[Example],
                 max_prompt_length: int | None) -> tuple[str, bool, int]:
    """(model path, whether prompts go through the chat template, prompt length in tokens), decided as trainer=trl
    decides them (models/loading.prompt_renderer), measuring the longest prompt as the model will read it."""
    from transformers import AutoTokenizer

    from ...models.loading import prompt_renderer
    from ...models.resolve import resolve_model_path

    path = resolve_model_path(model_cfg, task)
    tokenizer = AutoTokenizer.from_pretrained(path)
    render = prompt_renderer(tokenizer, model_cfg)  # raises for chat_template=true without a template
    templated = render("x") != "x"
    if max_prompt_length:
        return path, templated, int(max_prompt_length)
    longest = max((len(tokenizer(render(ex.prompt))["input_ids"]) for ex in examples), default=1)
    return path, templated, longest + TOKEN_MARGIN


def run_driver(driver: str, overrides: list[str], run: RunFiles, on_record: Callable[[dict[str, Any]], None],
               should_kill: Callable[[], str | None] = lambda: None) -> int:
    """Run verl's driver with `overrides` (checked against verl first), handing each file-logger line to `on_record`
    as it is written; `should_kill` returning a reason ends the run at once. Returns the driver's exit status."""
    checked(overrides)
    log_path = Path(logger_path(run.phase_dir, run.experiment))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    tail = MetricsTail(log_path)
    env = {**os.environ, LOGGER_ENV: str(log_path), "PYTHONUNBUFFERED": "1"}
    print(f"llmzero: running {driver} with {len(overrides)} overrides:\n  " + "\n  ".join(overrides), flush=True)
    proc = subprocess.Popen([sys.executable, "-m", driver, *overrides], env=env, stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    try:
        while proc.poll() is None:
            for rec in tail.poll():
                on_record(rec)
            reason = should_kill()
            if reason:
                print(f"llmzero: ending verl: {reason}", flush=True)
                proc.kill()
                break
            time.sleep(POLL_S)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for rec in tail.poll():
        on_record(rec)
    return int(proc.returncode)


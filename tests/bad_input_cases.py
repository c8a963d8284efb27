"""The table of bad inputs that tests/bad_input_cases.py runs through the real command line, in process.

Each case is what a user types (or does to a search directory), the exit code it must end with, and
the words its message must contain: the key and the value, or the file and what is wrong. Kept apart
from the test so the closing note's table can be printed from the same list (`python
tests/bad_input_cases.py`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton

from llmzero.agents.base import Proposal
from llmzero.agents.heuristic import HeuristicAgent
from llmzero.trainers.base import TrainerBase
from llmzero.trainers.synthetic import SyntheticTrainer

# Fast, quiet, offline: the synthetic trainer without its step delay.
BASE_ARGS = ["trainer=synthetic", "trainer.step_delay_s=0", "wandb.mode=disabled", "search.display=false",
             "cluster.poll_interval_s=0.01", "search.budget=3"]
HUGE = "1" + "0" * 400
RECIPES = Path(__file__).parent / "fixtures" / "recipes"
TASKS = Path(__file__).parent / "fixtures" / "tasks"


@dataclass
class Case:
    name: str
    args: list[str]  # {tmp}: a scratch directory of the case; {base}: a copy of a finished 2-node search
    code: int
    expect: tuple[str, ...]  # every one must appear in the output
    damage: Callable[[Path], None] | None = None  # done to {base} before the command
    plugin: bool = False  # the case runs a search with one of the plug-in agents below
    synthetic: bool = True  # run on the synthetic trainer (the TRL cases choose their own)
    kind: str = "setting"


def _write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        path = base / rel
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return damage


def _truncate(rel: str, keep: int) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        path = base / rel
        path.write_bytes(path.read_bytes()[:keep])
    return damage


def _edit_tree(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        data = json.loads((base / "tree.json").read_text())
        edit(data)
        (base / "tree.json").write_text(json.dumps(data))
    return damage


def _drop_node(data: dict) -> None:
    data["nodes"] = [n for n in data["nodes"] if n["id"] != 0]


def _orphan_parent(data: dict) -> None:
    data["nodes"][-1]["parent"] = 99


def _unknown_status(data: dict) -> None:
    data["nodes"][0]["status"] = "exploded"


def _remove(rel: str) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        target = base / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return damage


def _both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        for step in steps:
            step(base)
    return damage


D, F, A = "damaged state", "filesystem", "plug-in agent"
CASES = [
    # ---- settings: types, ranges, choices, misspelt keys (with and without +)
    Case("budget not an int", ["search.budget=abc"], 2, ("search.budget=abc", "Integer")),
    Case("budget zero", ["search.budget=0"], 2, ("search.budget=0", "≥ 1")),
    Case("budget negative", ["search.budget=-3"], 2, ("search.budget=-3",)),
    Case("misspelt key", ["search.budgte=3"], 2, ("search.budgte=3", "did you mean search.budget")),
    Case("misspelt key with +", ["+search.budgte=3"], 2, ("search.budgte", "did you mean search.budget")),
    Case("unknown top-level key", ["foo=1"], 2, ("foo=1", "not a setting", "search")),
    Case("unknown hyperparameter", ["hparams.foo=1"], 2, ("hparams.foo=1", "learning_rate")),
    Case("unknown hyperparameter with +", ["+hparams.foo=1"], 2, ("hparams", "foo", "learning_rate")),
    Case("hyperparameter not a number", ["hparams.learning_rate=abc"], 2, ("hparams.learning_rate", "abc")),
    Case("hyperparameter 1e400", ["hparams.learning_rate=1e400"], 2, ("hparams.learning_rate=inf",)),
    Case("hyperparameter huge literal", [f"hparams.learning_rate={HUGE}"], 2, ("hparams.learning_rate=1000",)),
    Case("hyperparameter nan", ["hparams.learning_rate=nan"], 2, ("hparams.learning_rate=nan",)),
    Case("hyperparameter below range", ["hparams.learning_rate=-1"], 2, ("hparams.learning_rate=-1", "expected")),
    Case("lora_rank zero", ["hparams.lora_rank=0"], 2, ("hparams.lora_rank=0", "expected an int")),
    Case("lora_rank fractional", ["hparams.lora_rank=3.5"], 2, ("hparams.lora_rank=3.5",)),
    Case("batch_size a bool", ["hparams.batch_size=true"], 2, ("hparams.batch_size=True",)),
    Case("bool hyperparameter a word", ["hparams.norm_adv_by_std=maybe"], 2, ("hparams.norm_adv_by_std='maybe'",)),
    Case("hyperparameter a list", ["hparams.temperature=[1,2]"], 2, ("hparams.temperature=[1, 2]",)),
    Case("max_steps beyond the cap", ["hparams.max_steps=500"], 2, ("hparams.max_steps=500", "max_steps_per_phase")),
    Case("max_steps negative", ["hparams.max_steps=-1"], 2, ("hparams.max_steps=-1",)),
    Case("uct c negative", ["search.uct.c=-1"], 2, ("search.uct.c=-1.0", "≥ 0")),
    Case("uct c infinite", ["search.uct.c=inf"], 2, ("search.uct.c=inf",)),
    Case("uct temperature zero", ["search.uct.temperature=0"], 2, ("search.uct.temperature=0.0",)),
    Case("uct misspelt", ["search.uct.cc=1"], 2, ("search.uct.cc=1", "did you mean search.uct.c")),
    Case("uct misspelt with +", ["+search.uct.cc=1"], 2, ("search.uct.cc", "did you mean search.uct.c")),
    Case("uct given a number", ["search.uct=3"], 2, ("search.uct=3", "UCTParams")),
    Case("no evolve children", ["search.limits.max_evolve_children=0"], 2, ("search.limits.max_evolve_children=0",)),
    Case("phase cap zero", ["search.max_steps_per_phase=0"], 2, ("search.max_steps_per_phase=0", "≥ 1")),
    Case("gpu hours negative", ["search.max_gpu_hours=-1"], 2, ("search.max_gpu_hours=-1",)),
    Case("agent dollars negative", ["search.max_agent_usd=-1"], 2, ("search.max_agent_usd=-1",)),
    Case("rho_min above 1", ["search.rho_min=2"], 2, ("search.rho_min=2.0", "[0, 1]")),
    Case("seed not an int", ["search.seed=abc"], 2, ("search.seed=abc",)),
    Case("display not a bool", ["search.display=maybe"], 2, ("search.display=maybe",)),
    Case("stop interval steps zero", ["search.early_stop.interval_steps=0"], 2, ("search.early_stop.interval_steps=0",)),
    Case("stop min_evals negative", ["search.early_stop.min_evals=-1"], 2, ("search.early_stop.min_evals=-1",)),
    Case("stop interval seconds negative", ["search.early_stop.interval_s=-5"], 2, ("search.early_stop.interval_s=-5",)),
    Case("overlay mode unknown", ["search.early_stop.overlays=sometimes"], 2, ("search.early_stop.overlays", "sometimes")),
    Case("poll interval negative", ["cluster.poll_interval_s=-1"], 2, ("cluster.poll_interval_s=-1.0",)),
    Case("no concurrent phases", ["cluster.max_concurrent=0"], 2, ("cluster.max_concurrent=0",)),
    Case("cluster key misspelt with +", ["+cluster.max_concurent=2"], 2, ("cluster.max_concurent", "max_concurrent")),
    Case("eval_every zero", ["trainer.eval_every=0"], 2, ("trainer.eval_every=0",)),
    Case("save_every negative", ["trainer.save_every=-1"], 2, ("trainer.save_every=-1",)),
    Case("wandb mode unknown", ["wandb.mode=cloud"], 2, ("wandb.mode", "cloud")),
    Case("verl without GPUs", ["trainer=verl"], 2, ("cluster.gpus_per_phase=0", "trainer=verl"), synthetic=False),
    Case("verl phase over nodes", ["trainer=verl", "cluster.gpus_per_phase=8", "cluster.gpus_per_node=3"], 2,
         ("cluster.gpus_per_node=3", "divisor of cluster.gpus_per_phase=8"), synthetic=False),
    Case("verl batch not splitting over GPUs", ["trainer=verl", "cluster.gpus_per_phase=3"], 2,
         ("batch_size=32", "3 GPUs"), synthetic=False),
    Case("verl engine unknown", ["trainer=verl", "cluster.gpus_per_phase=1", "trainer.rollout_engine=hf"], 2,
         ("trainer.rollout_engine='hf'", "vllm"), synthetic=False),
    Case("verl override verl lacks", ["trainer=verl", "cluster.gpus_per_phase=1",
                                      "trainer.overrides=['trainer.no_such=1']"], 2,
         ("trainer.no_such", "Could not override"), synthetic=False),
    Case("verl on a machine without a GPU", ["trainer=verl", "cluster.gpus_per_phase=1"], 2,
         ("trainer=verl", "cluster.gpus_per_phase=1", "torch sees 0", "cluster=ray"), synthetic=False),
    # ---- the same checks under -m (Hydra's multirun, the llmzero sweeper included), with the same one-line errors
    Case("multirun: misspelt key", ["-m", "hydra/sweeper=llmzero", "search.budgt=3"], 2,
         ("search.budgt=3", "did you mean search.budget")),
    Case("multirun: sweeper batch size 0", ["-m", "hydra/sweeper=llmzero", "hydra.sweeper.max_batch_size=0"], 2,
         ("hydra.sweeper.max_batch_size=0", "int ≥ 1")),
    Case("multirun: negative budget", ["-m", "hydra/sweeper=llmzero", "search.budget=-3"], 2, ("search.budget=-3",)),
    Case("multirun: unknown sweeper mode", ["-m", "hydra/sweeper=llmzero", "sweeper.mode=bogus"], 2,
         ("sweeper.mode=bogus", "grid")),
    Case("multirun: one bad value in a sweep", ["-m", "search.budget=1,-2"], 2, ("search.budget=-2", "≥ 1")),
    Case("multirun: a swept group option that does not exist", ["-m", "task=arithmetic,nosuch"], 2,
         ("task=nosuch", "arithmetic")),
    Case("multirun through hydra.mode=MULTIRUN", ["hydra.mode=MULTIRUN", "hydra/sweeper=llmzero", "search.budgt=3"], 2,
         ("search.budgt=3", "did you mean search.budget")),
    Case("multirun: cluster executor under the sweeper", ["-m", "hydra/sweeper=llmzero", "cluster=ray"], 2,
         ("cluster=ray", "hydra/launcher=ray")),
    Case("task data file empty", ["task=wildsci", "task.data_files={tmp}/empty.jsonl"], 2,
         ("task.data_files=", "empty.jsonl", "holds no rows")),
    Case("grid axis that is no hyperparameter", ["sweeper.mode=grid", "sweeper.grid.learnig_rate.values=[1]"], 2,
         ("sweeper.grid.learnig_rate", "did you mean sweeper.grid.learning_rate", "lora_rank")),
    Case("clip ratios that cross", ["hparams.clip_ratio_low=0.5", "hparams.clip_ratio_high=0.01"], 2,
         ("hparams.clip_ratio_high=0.01", "hparams.clip_ratio_low=0.5", "clip_ratio_high ≥ clip_ratio_low")),
    Case("search.dir empty", ["search.dir="], 2, ("search.dir=''", "directory path")),
    Case("task that does not exist", ["task=chemcot_typo"], 2, ("task=chemcot_typo", "arithmetic")),
    Case("task data file missing", ["task=wildsci", "task.data_files={tmp}/wildsci.jsonl"], 2,
         ("task=wildsci", "task.data_files=", "wildsci.jsonl", "FileNotFoundError")),
    Case("task data of another benchmark", ["task=wildsci", f"task.data_files={TASKS}/ssmr.jsonl"], 2,
         ("task=wildsci", "ssmr.jsonl", "JustinTX/WildSci schema", "no options, answer column")),
    Case("task data too small", ["task=ssmr", "task.data_files={tmp}/two.jsonl"], 2,
         ("task=ssmr", "2 usable rows", "too few")),
    Case("model that does not exist", ["model=gpt5"], 2, ("model=gpt5", "tiny")),
    Case("trainer that does not exist", ["trainer=nope"], 2, ("trainer=nope", "synthetic")),
    Case("agent that does not exist", ["agent=gpt"], 2, ("agent=gpt", "heuristic")),
    Case("agent class that does not exist", ["agent._target_=nowhere.Agent"], 2, ("nowhere.Agent",)),
    Case("space bound below zero on a log scale", ["search.space.learning_rate.low=-1"], 2,
         ("search.space.learning_rate.low=-1",)),
    Case("space bound not a number", ["search.space.learning_rate.high=abc"], 2, ("search.space.learning_rate.high='abc'",)),
    Case("space bounds crossed", ["search.space.kl_coef.low=2"], 2, ("search.space.kl_coef.low=2", "high")),
    Case("space default out of bounds", ["search.space.learning_rate.default=5"], 2,
         ("search.space.learning_rate.default=5",)),
    Case("space field misspelt", ["+search.space.learning_rate.lo=1"], 2, ("search.space.learning_rate.lo", "low")),
    Case("space type unknown", ["search.space.learning_rate.type=complex"], 2, ("search.space.learning_rate.type='complex'",)),
    Case("override without a value", ["search.budget"], 2, ("'search.budget'", "key=value")),
    Case("override that does not parse", ["hparams.learning_rate=[1"], 2, ("hparams.learning_rate=[1",)),
    # ---- directories
    Case("search.dir is a file", ["search.dir={tmp}/afile"], 2, ("search.dir=", "afile is a file"), kind=F),
    Case("search.dir under a file", ["search.dir={tmp}/afile/run"], 2, ("search.dir=", "afile is a file"), kind=F),
    Case("search.dir cannot be created", ["search.dir=/proc/llmzero-run"], 2, ("search.dir=/proc/llmzero-run",), kind=F),
    Case("search.resume is a file", ["search.resume={tmp}/afile"], 2, ("search.resume=", "is a file"), kind=F),
    Case("search.resume does not exist", ["search.resume={tmp}/nowhere"], 2, ("search.resume=", "no search there"), kind=F),
    Case("search.resume is an empty directory", ["search.resume={tmp}"], 2, ("search.resume=", "config.yaml is missing"),
         kind=F),
    # ---- damaged search directories (a copy of a finished search, then rerun or resumed)
    Case("tree.json garbage", ["search.dir={base}"], 2, ("tree.json", "cp ", "tree.last-good.json"),
         _write("tree.json", "}{ not json"), kind=D),
    Case("tree.json truncated", ["search.dir={base}"], 2, ("tree.json", "Expecting"), _truncate("tree.json", 300), kind=D),
    Case("tree.json empty", ["search.dir={base}"], 2, ("tree.json",), _write("tree.json", ""), kind=D),
    Case("tree.json a list", ["search.dir={base}"], 2, ("tree.json", "found list"), _write("tree.json", "[]"), kind=D),
    Case("tree.json not UTF-8", ["search.dir={base}"], 2, ("tree.json", "utf-8"), _write("tree.json", b"\xff\xfe\x00"),
         kind=D),
    Case("tree.json from a newer LLMZero", ["search.dir={base}"], 2, ("tree.json", "99", "upgrade"),
         _edit_tree(lambda d: d.update(llmzero_tree=99)), kind=D),
    Case("tree.json node missing", ["search.dir={base}"], 2, ("tree.json", "0"), _edit_tree(_drop_node), kind=D),
    Case("tree.json parent missing", ["search.dir={base}"], 2, ("tree.json", "99"), _edit_tree(_orphan_parent), kind=D),
    Case("tree.json unknown status", ["search.dir={base}"], 2, ("tree.json", "exploded"), _edit_tree(_unknown_status),
         kind=D),
    Case("tree.json and its last good copy damaged", ["search.dir={base}"], 2, ("tree.json", "restore tree.json"),
         _both(_write("tree.json", "x"), _write("tree.last-good.json", "x")), kind=D),
    Case("checkpoints listed but gone", ["search.dir={base}"], 2, ("node 1", "checkpoint", "missing"),
         _remove("nodes/1/checkpoints"), kind=D),
    Case("config.yaml garbage", ["search.dir={base}"], 2, ("config.yaml", "cannot be read"),
         _write("config.yaml", "a: [unclosed\n b: }"), kind=D),
    Case("config.yaml not a mapping", ["search.resume={base}"], 2, ("config.yaml", "does not hold"),
         _write("config.yaml", "- just\n- a list\n"), kind=D),
    Case("config.yaml binary", ["search.resume={base}"], 2, ("config.yaml",), _write("config.yaml", b"\x00\xff\xfe"),
         kind=D),
    Case("a different search in the directory", ["search.dir={base}", "hparams.learning_rate=0.001"], 2,
         ("different search: hparams.learning_rate (None there, 0.001 now)", "search.resume="), kind=D),
    Case("resume with a non-resumable override", ["search.resume={base}", "hparams.learning_rate=0.001"], 2,
         ("hparams.learning_rate", "0.001", "search.budget"), kind=D),
    Case("resume with a changed UCT constant", ["search.resume={base}", "search.uct.c=2"], 2,
         ("search.uct.c", "2.0", "may change"), kind=D),
    Case("resume naming another search.dir", ["search.resume={base}", "search.dir={tmp}/other"], 2,
         ("search.dir=", "search.resume names"), kind=D),
    # ---- plug-in agents that misbehave: answered by the fallback, the search goes on (exit 0)
    Case("agent changes lora_rank", ["agent._target_=bad_input_cases.RankChanger", "agent.name=plug"], 0,
         ("agent plug answered invalidly", "changes.lora_rank=16"), plugin=True, kind=A),
    Case("agent raises", ["agent._target_=bad_input_cases.Crashing", "agent.name=plug"], 0,
         ("agent plug failed: ZeroDivisionError",), plugin=True, kind=A),
    Case("agent answers nan", ["agent._target_=bad_input_cases.NaNAgent", "agent.name=plug"], 0,
         ("agent plug answered invalidly", "learning_rate=nan"), plugin=True, kind=A),
    Case("agent answers None", ["agent._target_=bad_input_cases.NoneAgent", "agent.name=plug"], 0,
         ("agent plug failed: AttributeError",), plugin=True, kind=A),
    Case("agent without AgentBase's optional attributes", ["agent._target_=bad_input_cases.BareAgent",
                                                           "agent.name=plug"], 0, ("best path",), plugin=True, kind=A),
    Case("agent without should_stop", ["agent._target_=bad_input_cases.HalfAgent", "agent.name=plug"], 2,
         ("agent._target_=bad_input_cases.HalfAgent", "should_stop()"), plugin=True, kind=A),
    # ---- backend sections: their own schema, their _target_
    Case("task without training prompts", ["task.train_size=0"], 2, ("task.train_size=0", "≥ 1")),
    Case("task without validation prompts", ["task.val_size=0"], 2, ("task.val_size=0",)),
    Case("task without a name", ["task.name="], 2, ("task.name=''",)),
    Case("model size negative", ["model.params_b=-1"], 2, ("model.params_b=-1.0",)),
    Case("simulator delay negative", ["trainer.step_delay_s=-1"], 2, ("trainer.step_delay_s=-1.0",)),
    Case("simulator noise negative", ["trainer.noise=-1"], 2, ("trainer.noise=-1.0",)),
    Case("simulator memory zero", ["trainer.memory_budget=0"], 2, ("trainer.memory_budget=0.0",)),
    Case("LLM agent failure mode unknown", ["agent=litellm", "agent.on_failure=retry"], 2, ("agent.on_failure=retry", "fallback, error")),
    Case("LLM agent max_tokens zero", ["agent=claude", "agent.max_tokens=0"], 2, ("agent.max_tokens=0",)),
    Case("LLM agent temperature 5", ["agent=claude", "agent.temperature=5"], 2, ("agent.temperature=5.0", "[0, 2]")),
    Case("trainer class misspelt", ["trainer._target_=llmzero.trainers.synthetic.Synthetic"], 2,
         ("trainer._target_='llmzero.trainers.synthetic.Synthetic'", "no attribute")),
    Case("task target a module", ["task._target_=os.path"], 2, ("task._target_='os.path'", "module")),
    Case("seed negative", ["search.seed=-1"], 2, ("search.seed=-1", "2**32")),
    Case("task seed too large", [f"task.seed={2 ** 40}"], 2, (f"task.seed={2 ** 40}",)),
    Case("tilde unquoted", ["search.dir=~/runs/x"], 2, ("search.dir=~/runs/x", "quote")),
    Case("local model that does not exist", ["trainer=trl", "model.path=/nonexistent/model"], 2,
         ("model.path='/nonexistent/model'", "no such directory"), synthetic=False),
    Case("builtin model that does not exist", ["trainer=trl", "model.path=builtin:huge"], 2,
         ("model.path='builtin:huge'", "builtin:tiny"), synthetic=False),
    Case("model path neither a directory nor a hub id", ["trainer=trl", "model.path=a/b/c"], 2,
         ("model.path='a/b/c'", "hub id"), synthetic=False),
    Case("TRL loss type unknown", ["trainer=trl", "trainer.loss_type=sapo"], 2, ("trainer.loss_type='sapo'", "dapo"),
         synthetic=False),
    Case("TRL device unknown", ["trainer=trl", "trainer.device=tpu"], 2, ("trainer.device='tpu'", "cuda"),
         synthetic=False),
    Case("stopper that never looks", ["search.early_stop.interval_steps=null"], 2,
         ("search.early_stop.interval_steps=None", "enabled=false")),
    Case("W&B project empty", ["wandb.project="], 2, ("wandb.project=''",)),
    Case("W&B directory unwritable", ["wandb.mode=offline", "wandb.dir=/proc/llmzero-wandb"], 2,
         ("wandb.dir=/proc/llmzero-wandb", "wandb.mode=disabled"), kind=F),
    Case("executor class that does not exist", ["cluster._target_=llmzero.executors.ray.RayExecutor"], 2,
         ("cluster._target_='llmzero.executors.ray.RayExecutor'", "has no attribute 'ray'")),
    Case("Ray address nothing answers at", ["cluster=ray", "cluster.address=http://127.0.0.1:9"], 2,
         ("cluster.address='http://127.0.0.1:9' is not valid: no Ray job server answers there", "ray start --head")),
    Case("Ray address misspelt", ["cluster=ray", "cluster.adress=http://head:8265"], 2,
         ("cluster.adress", "did you mean cluster.address")),
    Case("Ray stop grace negative", ["cluster=ray", "cluster.stop_grace_s=-1"], 2, ("cluster.stop_grace_s=-1.0",)),
    Case("Ray memory per phase zero", ["cluster=ray", "cluster.memory_gb_per_phase=0"], 2,
         ("cluster.memory_gb_per_phase=0.0",)),
    Case("Ray forwarded variable not a name", ["cluster=ray", "cluster.forward_env=[1X]"], 2,
         ("cluster.forward_env='1X'", "names of environment variables")),
    Case("Ray with a trainer that runs only in process", ["cluster=ray", "trainer._target_=bad_input_cases.InProcessOnly"],
         2, ("cannot run on cluster=ray", "phase_command"), kind="plug-in backend"),
    Case("recipe name unknown", ["recipe=nothere"], 2, ("recipe=nothere", "practitioner", "path")),
    Case("recipe file missing", ["recipe={tmp}/none.yaml"], 2, ("none.yaml", "not a file")),
    Case("recipe file not a recipe", [f"recipe={RECIPES}/not_a_recipe.yaml"], 2, ("not_a_recipe.yaml", "phases")),
    Case("recipe outside the space", [f"recipe={RECIPES}/out_of_space.yaml"], 2,
         ("phase 2", "learning_rate=5.0", "search.space")),
    Case("recipe changes lora_rank", [f"recipe={RECIPES}/changes_rank.yaml"], 2, ("phase 2", "lora_rank=16", "8")),
    Case("recipe phase over the cap", [f"recipe={RECIPES}/too_long.yaml"], 2, ("max_steps=5000", "max_steps_per_phase")),
    Case("recipe absolute steps it lacks", ["recipe=capacity_guidebook", "recipe.keep_absolute_steps=true"], 2,
         ("recipe.keep_absolute_steps=true", "epochs")),
    Case("sweeper mode unknown", ["sweeper.mode=bayes"], 2, ("sweeper.mode", "bayes", "grid")),
    Case("sweeper trials zero", ["sweeper.mode=random", "sweeper.trials=0"], 2, ("sweeper.trials=0",)),
    Case("grid axis empty", ["sweeper.mode=grid", "sweeper.grid.learning_rate.values=[]"], 2,
         ("sweeper.grid.learning_rate.values",)),
    Case("grid value outside the space", ["sweeper.mode=grid", "sweeper.grid.learning_rate.values=[5.0]",
                                          "sweeper.grid.learning_rate.relative=false"], 2,
         ("grid trial 1", "learning_rate=5.0")),
    Case("random range reversed", ["sweeper.mode=random", "sweeper.random.temperature.low=2"], 2,
         ("sweeper.random.temperature.low=2", "high")),
    Case("ablation unknown", ["search.ablation=no_agent"], 2, ("search.ablation", "no_multistage")),
    Case("trainer with a bug", ["trainer._target_=bad_input_cases.BuggyTrainer"], 1,
         ("unexpected ZeroDivisionError", "llmzero-crash-", "rerun the same command"), kind="plug-in backend"),
]


# ---- plug-in agents that misbehave (agent._target_=bad_input_cases.<name>) ---------------------------
class RankChanger(HeuristicAgent):
    """A plug-in agent that changes lora_rank along a path (only allowed from scratch)."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        return Proposal(changes={"lora_rank": 16}, diagnosis="bigger adapter", rationale="?",
                        resume_step=max(ctx.parent_checkpoints) if ctx.parent_checkpoints else None)


class Crashing(HeuristicAgent):
    """A plug-in agent with a bug, and one whose observations have the wrong shape."""

    def propose(self, ctx):
        if ctx.parent is None:
            return super().propose(ctx)
        if ctx.node_id % 2:
            raise ZeroDivisionError("division by zero in my agent")
        p = super().propose(ctx)
        p.observations = [{"metric": "kl", "claim": "rose", "unexpected": [1, 2]}, "not even a dict"]
        return p


class NaNAgent(HeuristicAgent):
    """A plug-in agent whose numbers are not numbers."""

    def propose(self, ctx):
        p = super().propose(ctx)
        if ctx.parent is not None:
            p.changes = {**p.changes, "learning_rate": float("nan")}
        return p


class NoneAgent(HeuristicAgent):
    """A plug-in agent that forgets to return its answer."""

    def propose(self, ctx):
        return super().propose(ctx) if ctx.parent is None else None


class BareAgent:
    """A plug-in agent that does not subclass AgentBase and declares none of its optional attributes (name,
    wants_images): the search gives them their defaults."""

    def __init__(self, **options):
        self._inner = HeuristicAgent(seed=int(options.get("seed", 0)))

    def propose(self, ctx):
        return self._inner.propose(ctx)

    def should_stop(self, ctx):
        return self._inner.should_stop(ctx)

    def analyze_error(self, ctx):
        return self._inner.analyze_error(ctx)


class HalfAgent:
    """A plug-in agent without should_stop: refused before the search, not after its first phase."""

    def __init__(self, **options):
        self._inner = HeuristicAgent()

    def propose(self, ctx):
        return self._inner.propose(ctx)

    def analyze_error(self, ctx):
        return self._inner.analyze_error(ctx)


class BuggyTrainer(SyntheticTrainer):
    """A plug-in trainer with a bug the search cannot foresee: one message and a saved traceback, not a crash."""

    def steps_per_epoch(self, hparams):
        return 1 // 0


class InProcessOnly(SyntheticTrainer):
    """A plug-in trainer that can only run its phases in the search process (no phase entry point)."""

    phase_command = TrainerBase.phase_command


class Outcome:
    def __init__(self, code: int, out: str):
        self.code, self.out = code, out

    def message(self) -> str:
        lines = [ln for ln in self.out.splitlines() if "llmzero: error" in ln or " agent plug " in ln]
        return lines[0].strip() if lines else (self.out.strip().splitlines() or [""])[-1]


def run_cli(args: list[str], cwd: Path) -> Outcome:
    """`python -m llmzero <args>` in this process (60 subprocesses would take minutes): sys.argv, the cwd,
    stdout/stderr, the signal handler and Hydra's singletons are put back afterwards."""
    from llmzero.__main__ import cli

    buf = io.StringIO()
    saved = (sys.argv, os.getcwd(), signal.getsignal(signal.SIGTERM), logging.raiseExceptions,
             Singleton.get_state())
    sys.argv = ["llmzero", *args]
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                cli()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, cwd0, handler, logging.raiseExceptions, state = saved
        os.chdir(cwd0)
        signal.signal(signal.SIGTERM, handler)
        GlobalHydra.instance().clear()
        Singleton.set_state(state)
    return Outcome(code, buf.getvalue())


def prepare(case: Case, tmp: Path, base_source: Path) -> list[str]:
    (tmp / "afile").write_text("not a directory\n")
    (tmp / "empty.jsonl").write_text("")
    (tmp / "two.jsonl").write_text("".join((TASKS / "ssmr.jsonl").read_text().splitlines(True)[:2]))  # 2 rows of SSMR
    base = tmp / "base"
    if any("{base}" in a for a in case.args):
        shutil.copytree(base_source, base)
        if case.damage:
            case.damage(base)
    args = [a.format(tmp=tmp, base=base) for a in case.args]
    has_dir = any(a.startswith(("search.dir=", "search.resume=")) for a in args)
    budget = ["search.budget=2"] if case.plugin else []  # the root and one proposal from the plug-in
    base_args = BASE_ARGS if case.synthetic else [a for a in BASE_ARGS if not a.startswith("trainer")]
    flags = [a for a in args if a in ("-m", "--multirun")]  # first, as users type them (argparse wants them there)
    args = [a for a in args if a not in flags]
    return [*flags, *base_args, *budget, *([] if has_dir else [f"search.dir={tmp}/run"]), *args]


def make_base(where: Path) -> Path:
    """A finished two-node search of the synthetic trainer (the root and an evolved child), to damage."""
    out = run_cli([*BASE_ARGS, "search.budget=2", f"search.dir={where}/search"], where)
    assert out.code == 0, out.out[-2000:]
    return where / "search"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes under a directory, but Hydra's job log (opened for appending by any run)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".log"}


@dataclass
class Result:
    code: int
    out: str
    ran_phase: bool  # the refused command created a search (it must not)
    untouched: bool | None  # the damaged search it was pointed at is byte for byte as before (None: none)


def run_case(index: int, root: str, base_source: str) -> Result:
    tmp = Path(root) / f"case{index}"
    tmp.mkdir()
    args = prepare(CASES[index], tmp, Path(base_source))
    damaged = tmp / "base"
    before = _snapshot(damaged) if damaged.exists() else None
    out = run_cli(args, tmp)
    return Result(out.code, out.out, (tmp / "run" / "tree.json").exists(),
                  None if before is None else _snapshot(damaged) == before)


def run_all(root: Path, workers: int | None = None) -> list[Result]:
    """Every case, on every core: each command is in-process in its worker, the workers run side by side."""
    base = make_base(root)
    jobs = [(i, str(root), str(base)) for i in range(len(CASES))]
    with multiprocessing.get_context("spawn").Pool(workers or os.cpu_count() or 2) as pool:
        return pool.starmap(run_case, jobs, chunksize=1)


if __name__ == "__main__":  # the closing note's table
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as d:
        print("| # | kind | case | exit | message |\n|---|---|---|---|---|")
        for i, (case, res) in enumerate(zip(CASES, run_all(Path(d))), 1):
            msg = Outcome(res.code, res.out).message().replace(f"{d}/case{i - 1}", "…").replace("|", "\\|")
            print(f"| {i} | {case.kind} | {case.name} | {res.code} | {msg[:300]} |")

"""Build a search from a composed config and run it: the body of `python -m llmzero`."""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console

from .agents.base import interface_problems
from .agents.heuristic import HeuristicAgent
from .agents.validation import ProposalError
from .atomic import write_text_atomic
from .config.schema import (AgentConfig, ClusterConfig, ConfigError, ModelConfig, TaskConfig, WandbConfig,
                            check_section, typed)
from .config.strategies import RecipeConfig, SweeperConfig, SweepMode
from .hparams.space import HParamError, HParamSpace, HParamSpec, spec_from_mapping
from .reports.live import make_console, make_display
from .reports.tables import agent_totals, fmt_score, node_table, path_table, tree_view
from .reports.writer import ReportWriter
from .search.engine import SearchEngine, SearchResult
from .search.observer import SearchObserver
from .search.phase_rules import plan_rules
from .search.reward_setup import settle_reward
from .search.schedules import Schedule, make_schedule
from .search.settings import SearchSettings
from .state.lock import SearchLock
from .state.rundir import RunDir, resume_problem
from .strategy.recipe import phase_lengths
from .tracking.wandb_observer import WandbObserver
from .tracking.wandb_runs import WandbTracker
from .trainers.factory import trainer_from_config
from .tree import NodeStatus, Tree
from .tree.journal import JournalError

# Settings that define *which* search a directory holds; the budget and caps may change on resume. Those added
# after format 1 have their default when a saved config.yaml lacks them.
IDENTITY_KEYS = ("task", "model", "trainer", "agent", "hparams", "search.space", "search.seed", "search.ablation",
                 "recipe", "sweeper.mode")
IDENTITY_DEFAULTS = {"search.ablation": None, "recipe": None, "sweeper.mode": SweepMode.adaptive.value}
MODE_IDENTITY = {SweepMode.grid.value: ("sweeper.grid", "sweeper.axes"), SweepMode.random.value: ("sweeper.random",)}
RESUMABLE_OVERRIDES = ("search.budget", "search.max_gpu_hours", "search.max_agent_usd", "search.max_trainer_steps",
                       "search.display",
                       "search.early_stop", "cluster.poll_interval_s", "wandb", "sweeper.trials")
# The backend sections checked by their schema before anything is built from them (the trainer's and the
# cluster's are checked where the search settings are made of them), and those whose _target_ must import.
SECTIONS = {"task": TaskConfig, "model": ModelConfig, "agent": AgentConfig}
TARGETS = ("task", "model", "trainer", "agent", "cluster")

__all__ = ["ConfigError", "run_search"]


def _select(cfg: DictConfig, key: str) -> Any:
    node = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def read_saved_config(rundir: RunDir) -> DictConfig:
    """A search directory's config.yaml, or a ConfigError saying why it cannot be used and what to do."""
    try:
        saved = OmegaConf.load(rundir.config_file)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, OmegaConfBaseException) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{rundir.config_file} cannot be read ({problem}). {_config_advice(rundir)}") from None
    if not isinstance(saved, DictConfig) or not isinstance(saved.get("search"), DictConfig):
        raise ConfigError(f"{rundir.config_file} does not hold a search's settings. {_config_advice(rundir)}")
    return saved


def _config_advice(rundir: RunDir) -> str:
    return (f"Restore it from a backup; or delete it and rerun the command that started this search with "
            f"search.dir={rundir.root} (its settings are written again from the command line, the tree is kept); "
            f"or start a new search with search.dir=<new path>")


def _resumable(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE_OVERRIDES)


def load_resumed_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """search.resume=<dir>: the saved config is authoritative; budget-like overrides apply, and any other
    override that would change the saved search is refused rather than dropped."""
    problem = resume_problem(str(cfg.search.resume))
    if problem:
        raise ConfigError(problem)
    rundir = RunDir(Path(cfg.search.resume).expanduser())
    saved = read_saved_config(rundir)
    refused = []
    for parsed in OverridesParser.create().parse_overrides(list(overrides)):
        key = parsed.key_or_group
        if key == "search.resume" or key.startswith("hydra"):
            continue
        if key == "search.dir":
            if cfg.search.dir and Path(cfg.search.dir).expanduser().resolve() != rundir.root.resolve():
                refused.append(f"search.dir={cfg.search.dir} (search.resume names {rundir.root})")
        elif _resumable(key):
            OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=True)
        elif _select(saved, key) != _select(cfg, key):
            refused += [f"{k} ({_short(x, 60)} in the saved search, {_short(y, 60)} now)"
                        for k, x, y in _differences(key, _select(saved, key), _select(cfg, key))]
    if refused:
        raise ConfigError(
            f"search.resume={rundir.root}: these overrides would change the saved search and cannot apply to it: "
            f"{'; '.join(refused)}. On resume only these may change: {', '.join(RESUMABLE_OVERRIDES)}. "
            f"Start a new search with search.dir=<new path> to change the others")
    OmegaConf.update(saved, "search.dir", str(rundir.root))
    OmegaConf.update(saved, "search.resume", None)
    return saved


def check_same_search(saved: DictConfig, cfg: DictConfig, directory: Path) -> None:
    mode = str(_select(cfg, "sweeper.mode") or IDENTITY_DEFAULTS["sweeper.mode"])
    for key in IDENTITY_KEYS + MODE_IDENTITY.get(mode, ()):
        a, b = _select(saved, key), _select(cfg, key)
        a, b = (IDENTITY_DEFAULTS.get(key) if x is None else x for x in (a, b))
        # a setting added since the search was saved, unset (None) by default, is missing there: still the same search
        differences = _differences(key, a, b) if a != b else []
        if differences:
            changed = "; ".join(f"{k} ({_short(x, 60)} there, {_short(y, 60)} now)" for k, x, y in differences)
            raise ConfigError(
                f"search directory {directory} holds a different search: {changed}. Continue it with "
                f"search.resume={directory}, or start a new search with search.dir=<new path>."
            )


def _differences(key: str, a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """The leaves where two settings differ, named by their full keys (the first few)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [(key, a, b)]
    out: list[tuple[str, Any, Any]] = []
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            out += _differences(f"{key}.{k}", a.get(k), b.get(k))
    return out[:5]


def open_search_dir(cfg: DictConfig, rundir: RunDir) -> tuple[Tree, dict[str, Any]]:
    """The tree already in the directory (empty for a new search), after checking that it is this search and is
    whole; a refusal writes nothing."""
    if rundir.config_file.exists():
        check_same_search(read_saved_config(rundir), cfg, rundir.root)
    if not rundir.exists():
        return Tree(), {}
    tree, meta = rundir.load_tree()
    missing = rundir.missing_checkpoints(tree)
    if missing:
        more = f" (and {len(missing) - 3} more nodes)" if len(missing) > 3 else ""
        raise JournalError(f"search directory {rundir.root} is damaged: {'; '.join(missing[:3])}{more}. Restore "
                           f"those checkpoints from a backup, or start a new search with search.dir=<new path>")
    return tree, meta


def _short(x: Any, n: int = 120) -> str:
    s = repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


def build_space(cfg: DictConfig, trainer: Any) -> HParamSpace:
    space = HParamSpace.from_config(OmegaConf.to_container(cfg.search.space, resolve=True))
    extra = trainer.extra_hparams()
    clash = sorted(set(extra) & set(space.specs))
    if clash:
        raise ConfigError(f"trainer.extra_hparams redefines canonical hyperparameters {clash}; rename them")
    space = space.merged({k: v if isinstance(v, HParamSpec) else spec_from_mapping(v, f"trainer.extra_hparams.{k}")
                          for k, v in extra.items()})
    inert = getattr(trainer, "inert_hparams", None)  # optional: a user's backend may predate it
    return space.with_inert(inert()) if callable(inert) else space


def root_hparams(cfg: DictConfig, space: HParamSpace) -> dict[str, Any]:
    """θ0: space defaults, then task, model, trainer and command-line overrides (later wins)."""
    out = space.defaults()
    for where in ("task.hparams", "model.hparams", "trainer.hparams", "hparams"):
        layer = _select(cfg, where) or {}
        unknown = sorted(set(layer) - set(space.specs))
        if unknown:
            raise HParamError(f"{where}: unknown hyperparameter(s) {unknown}; allowed keys: {sorted(space.specs)}")
        out.update({k: v for k, v in layer.items() if v is not None})
    return space.validate(out, where="hparams")


def make_tracker(cfg: DictConfig, search_id: str, search_dir: Path) -> WandbTracker:
    return WandbTracker(typed(WandbConfig, cfg.wandb, "wandb"), search_id, search_dir)


def check_settings(cfg: DictConfig) -> SearchSettings:
    """Every section against its schema and every `_target_` importable: what needs neither the search directory
    nor the task's data (the command line's preflight runs it too, before Hydra composes the config twice more)."""
    settings = SearchSettings.from_config(cfg)
    for where, base in SECTIONS.items():
        check_section(cfg[where], base, where)
    for where in TARGETS:
        check_target(cfg[where], where)
    return settings


def check_target(section: Any, where: str) -> None:
    """A section's `_target_` must import before anything is built from it (the task's is built by the backend,
    often in a phase subprocess, where a typo would surface days later)."""
    target = section.get("_target_") if isinstance(section, (dict, DictConfig)) else None
    if target is None:
        return
    try:
        found = pkgutil.resolve_name(str(target))
        reason = "" if callable(found) else f"it is a {type(found).__name__}, which cannot be called"
    except Exception as exc:  # noqa: BLE001 - ImportError, AttributeError or ValueError, by what is wrong
        reason = f"{type(exc).__name__}: {exc}"
    if reason:
        raise ConfigError(f"{where}._target_={target!r} is not valid: expected an importable class as "
                          f"package.module.Class ({reason})")


def check_task_data(cfg: DictConfig) -> None:
    """The task's rows, read once here: a dataset that cannot be reached, or a task whose extra is not installed,
    ends the command with one message before a phase is started anywhere (TaskDataError is a ConfigError)."""
    from .tasks.base import build_task

    build_task(OmegaConf.to_container(cfg.task, resolve=True)).splits()


def make_executor(cfg: DictConfig) -> Any:
    """The executor of cluster._target_, with the rest of the section as its options; it checks them with its own
    schema (a search saved before the executor seam has no _target_: the local executor, ClusterConfig's default)."""
    options = dict(_select(cfg, "cluster") or {})
    options.setdefault("_target_", ClusterConfig._target_)
    return instantiate(options, _convert_="all")


def check_root(cfg: DictConfig, space: HParamSpace, trainer: Any, theta0: dict[str, Any]) -> None:
    """θ0 must make a phase the search can run; otherwise the root would be refused and the search would end
    having run nothing."""
    try:
        plan_rules(space, trainer, cfg.search.max_steps_per_phase).root(theta0)
    except ProposalError as exc:
        raise ConfigError(f"the root configuration θ0 cannot run: {exc}") from None


def schedule_of(cfg: DictConfig, settings: SearchSettings, space: HParamSpace, theta0: dict[str, Any],
                trainer: Any) -> Schedule:
    """The planner of `cfg` (recipe replay, static baseline or adaptive search), its fixed schedule checked whole."""
    recipe = typed(RecipeConfig, cfg.recipe, "recipe") if _select(cfg, "recipe") else None
    sweeper = typed(SweeperConfig, _select(cfg, "sweeper") or {}, "sweeper")
    schedule = make_schedule(recipe=recipe, sweeper=sweeper, search=settings.search, space=space, theta0=theta0,
                             trainer=trainer, agent_name=str(cfg.agent.name))
    schedule.apply(settings.search)
    if schedule.length is None:
        check_root(cfg, space, trainer, theta0)
    return schedule


def run_search(cfg: DictConfig, search_dir: Path, console: Console | None = None,
               observers: Sequence[SearchObserver] = (), command: Sequence[str] = (),
               executor: Any = None) -> SearchResult:
    """Run (or continue) the search of `cfg` in `search_dir`; `observers` watch it beside the display,
    the report and W&B (llmzero.search.observer); `command` (the overrides typed) goes in events.jsonl;
    `executor` replaces the one of cluster._target_ (the Hydra sweeper passes its launcher's)."""
    console = console or make_console()
    rundir = RunDir(search_dir)
    with SearchLock(search_dir):
        tree, meta = open_search_dir(cfg, rundir)
        settings = check_settings(cfg)
        check_task_data(cfg)
        trainer = trainer_from_config(cfg)
        agent = instantiate(cfg.agent, _convert_="all")
        problems = interface_problems(agent, str(cfg.agent.get("_target_", type(agent).__name__)))
        if problems:
            raise ConfigError("; ".join(problems))
        executor = executor if executor is not None else make_executor(cfg)
        left = [n for n in tree if n.status in NodeStatus.IN_FLIGHT and not n.pruned and n.job_id]
        if left and not hasattr(executor, "reattach"):  # it would run the phase again beside the job still running
            raise ConfigError(
                f"node {left[0].id} was left running as job {left[0].job_id} by the executor this search was started "
                f"with, and cluster._target_={type(executor).__module__}.{type(executor).__name__} cannot find that "
                f"job again: rerun with the search's own cluster settings (cluster in {rundir.config_file}) until no "
                "phase is in flight, then change the cluster")
        space = build_space(cfg, trainer)
        theta0 = root_hparams(cfg, space)
        schedule = schedule_of(cfg, settings, space, theta0, trainer)
        if schedule.skill_agent:
            agent = skill_agent_over(agent, search_dir, str(cfg.agent.name))
        # After the config's own checks: a typo is reported before the cluster is probed or the host's GPUs counted.
        problems = executor.check(trainer, search_dir, console.print)
        if problems:
            raise ConfigError("; ".join(problems))
        # Everything is checked: from here on the directory is ours to write.
        rundir.remove_orphans()
        write_text_atomic(rundir.config_file, OmegaConf.to_yaml(cfg, resolve=True))
        rundir.log_event("started", command=list(command), resumed_nodes=len(tree))
        settled = settle_reward(cfg, search_dir, agent, console.print)  # task.reward=auto, before any phase
        if settled is not cfg:
            trainer = trainer_from_config(settled)
        trainer.prepare(console.print)  # e.g. build the builtin model, with its progress, before the live view
        if len(tree):
            console.print(f"resuming search in {search_dir}: {len(tree)} nodes, iteration {tree.iteration}")
        meta.update({"search_id": search_dir.name, "search_dir": str(search_dir), "task": cfg.task.name,
                     "model": cfg.model.name, "trainer": cfg.trainer.name, "agent": schedule.label})
        # The skill-based baseline is the LLM's alone: an invalid answer is a failed job, not the heuristic's.
        fallback = None if type(agent) is HeuristicAgent or schedule.skill_agent else HeuristicAgent(seed=cfg.search.seed)
        tracker = make_tracker(cfg, meta["search_id"], search_dir)
        # In order: the display, the report (draws plots/), W&B (logs those plots with the search run).
        watchers = [make_display(cfg.search.display, console), ReportWriter(space), WandbObserver(tracker),
                    *observers]
        engine = SearchEngine(rundir=rundir, tree=tree, space=space, trainer=trainer, agent=agent,
                              fallback_agent=fallback, root_hparams=theta0, settings=settings,
                              observers=watchers, meta=meta, executor=executor, planner=schedule.planner)
        result = engine.run()
    print_summary(result, rundir, console)
    return result


def skill_agent_over(agent: Any, search_dir: Path, name: str) -> Any:
    """The skill-based agent on the configured LLM agent's client and settings, its conversation in the search dir."""
    from .agents.llm.agent import LLMAgent
    from .agents.llm.skill_agent import SkillAgent

    if not isinstance(agent, LLMAgent):
        raise ConfigError(f"sweeper.mode=skill_agent is an LLM agent's baseline, and agent={name} is not an LLM: use "
                          f"agent=claude or agent=litellm (agent.model, agent.api_key_env as for the search)")
    return SkillAgent(agent, search_dir / "skill_agent")


def print_summary(result: SearchResult, rundir: RunDir, console: Console) -> None:
    console.print(tree_view(result.tree))
    console.print(node_table(result.tree, base=result.base_scores))
    usage = agent_totals(result.tree)
    if usage:
        console.print(usage)
    if result.best is None:
        console.print(f"[red]no phase produced a validation score[/] ({result.stop_reason})")
        return
    console.print(path_table(result.path, phase_lengths(result.path)))
    arrow = " → ".join(f"#{n.id}" for n in result.path)
    console.print(f"best path: {arrow}   val {fmt_score(result.best.best_val)}   "
                  f"test {fmt_score(result.best.test_score)}   ({result.stop_reason})")
    base = result.base_scores
    if base:
        line = f"base model: val {fmt_score(base.get('val'))}   test {fmt_score(base.get('test'))}"
        if result.best.test_score is not None and base.get("test") is not None:
            line += f"   → best path beats the base model on test by {result.best.test_score - base['test']:+.3f}"
        console.print(line)
    console.print(f"recipe: {rundir.recipe_file}\ntree:   {rundir.tree_file}")
    report = rundir.root / "report.html"
    if report.is_file():
        console.print(f"report: {report}  (and report.md; plots in {rundir.root / 'plots'})")

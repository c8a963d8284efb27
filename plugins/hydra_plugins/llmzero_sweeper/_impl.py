"""The sweep: one llmzero search in the sweep dir, its phases run as jobs of the configured Hydra launcher.

Hydra's own sweepers cannot resume a sweep (facebookresearch/hydra issue 3328); this one can. The sweep dir is
deterministic (conf/config.yaml: hydra.sweep.dir, named like the app's run dir) and holds the search's tree, so
rerunning the same multirun command continues it: finished phases stay, job numbers continue (jobs.jsonl), a
bigger search.budget extends the tree, and a different search in that dir is refused, as by `python -m llmzero`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from llmzero.app import load_resumed_config, run_search
from llmzero.cli_errors import Reported
from llmzero.config.schema import ConfigError
from llmzero.config.strategies import SweepMode
from llmzero.executors.hydra_launch import HydraLaunchExecutor
from llmzero.search.observer import SearchObserver, SearchView
from llmzero.search.result import SearchResult

from . import params as sweep_params



@dataclass
class LLMZeroSweepResult:
    """What the sweep returns to Hydra (and to hydra_sweep_runner in tests)."""

    search: SearchResult
    returns: List[List[Any]] = field(default_factory=list)  # every batch's JobReturns, in launch order

    @property
    def recipe(self) -> Optional[dict]:
        return self.search.recipe


class _MultirunYaml(SearchObserver):
    """multirun.yaml, as Hydra's sweepers write it, once the search holds its directory (a refused sweep must not
    overwrite the one of the search that is there)."""

    def __init__(self, config: DictConfig, sweep_dir: Path) -> None:
        self.config, self.sweep_dir = config, sweep_dir

    def on_search_start(self, view: SearchView) -> None:
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")


LOCAL_EXECUTOR = "llmzero.executors.local.LocalExecutor"
RESULTS_FILE = "optimization_results.yaml"


def write_results(result: SearchResult, sweep_dir: Path) -> None:
    """What Hydra's Optuna and Nevergrad sweepers end with: "Best parameters" and "Best value" lines and
    optimization_results.yaml in the sweep dir. The parameters are the best strategy's last phase; the whole
    strategy, phase by phase, is recipe.yaml beside it."""
    best = result.best
    if best is None:
        print(f"Best parameters: none (no phase produced a validation score: {result.stop_reason})")
        return
    params = {f"hparams.{k}": v for k, v in sorted(best.hparams.items())}
    print(f"Best parameters: {params}")
    print(f"Best value: {best.best_val}")
    OmegaConf.save(OmegaConf.create({
        "name": "llmzero", "best_params": params, "best_value": best.best_val, "best_test": best.test_score,
        "best_node": best.id, "best_path": [n.id for n in result.path], "recipe": "recipe.yaml",
        "stop_reason": result.stop_reason}), sweep_dir / RESULTS_FILE)


def _is_llmzero_app(cfg: DictConfig, hydra_config: DictConfig) -> None:
    """The sweeper runs an llmzero search, whose phases are jobs of `python -m llmzero`: another app's config has
    none of that, and would otherwise end in an unexpected error on its first missing key."""
    if not all(isinstance(cfg.get(section), DictConfig) for section in ("search", "task", "trainer", "agent")):
        app = OmegaConf.select(hydra_config, "hydra.job.name", default="this app")
        raise ConfigError(f"hydra/sweeper=llmzero sweeps llmzero's own search (python -m llmzero -m "
                          f"hydra/sweeper=llmzero ...), and the config of {app} has no search, task, trainer and "
                          f"agent sections; use another sweeper for {app} (hydra/sweeper=basic, optuna, ...)")


def _launcher_places_phases(cfg: DictConfig) -> None:
    """Under the sweeper the Hydra launcher decides where phases run; a cluster executor would be ignored."""
    target = str(OmegaConf.select(cfg, "cluster._target_", default=LOCAL_EXECUTOR) or LOCAL_EXECUTOR)
    if target != LOCAL_EXECUTOR:
        name = OmegaConf.select(cfg, "cluster.name", default=target)
        raise ConfigError(
            f"cluster={name} (cluster._target_={target}) places phases itself, and with -m hydra/sweeper=llmzero the "
            f"Hydra launcher places them: for Ray use hydra/launcher=ray with the sweeper (pip install "
            f"hydra-ray-launcher), or run the search without -m to use cluster={name}")


class LLMZeroSweeperImpl:
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, Any]] = None) -> None:
        if max_batch_size is not None and (isinstance(max_batch_size, bool) or int(max_batch_size) < 1):
            raise ConfigError(f"hydra.sweeper.max_batch_size={max_batch_size!r} is not valid: expected null or an "
                              f"int ≥ 1")
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> LLMZeroSweepResult:
        assert self.hydra_context is not None and self.config is not None
        with Reported() as report:
            _is_llmzero_app(self.config, self.config)
            fixed, axes = self._split(arguments)
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, fixed)
            OmegaConf.set_readonly(cfg, False)
            with open_dict(cfg):
                del cfg["hydra"]  # the search's config.yaml holds the search's settings, not Hydra's
            if cfg.search.resume:  # the saved settings win, as with `python -m llmzero search.resume=<dir>`
                cfg = load_resumed_config(cfg, fixed)
            mode = str(OmegaConf.select(cfg, "sweeper.mode", default=SweepMode.adaptive.value))
            configured = sweep_params.collect(sweep_params.parse(self.params, "hydra.sweeper.params"),
                                              "hydra.sweeper.params.")
            sweep_params.apply(cfg, configured.overridden_by(sweep_params.collect(axes, "")), mode)
            _launcher_places_phases(cfg)
            sweep_dir = Path(str(self.config.hydra.sweep.dir)).expanduser().resolve()
            report.search_dir = sweep_dir
            launcher = str(OmegaConf.select(self.config, "hydra.runtime.choices.hydra/launcher", default="") or "")
            executor = HydraLaunchExecutor(self.launcher, fixed, sweep_dir, self.max_batch_size, launcher)
            self._same_launcher(executor, sweep_dir, launcher)
            result = run_search(cfg, sweep_dir, command=list(arguments), executor=executor,
                                observers=[_MultirunYaml(self.config, sweep_dir)])
            write_results(result, sweep_dir)
            return LLMZeroSweepResult(result, executor.returns)
        raise AssertionError("not reached: Reported ends the process on an error")

    def _same_launcher(self, executor: HydraLaunchExecutor, sweep_dir: Path, launcher: str) -> None:
        """A sweep dir whose phases ran through another launcher is continued only when the user named it: the
        default dir is named by the search, not the launcher, so a SLURM line after a local sweep would otherwise
        resume the local one without a word. A launcher that never got a job out (no SLURM here) does not count."""
        ran = executor.launchers_that_ran() - {launcher}
        if not ran or not launcher:
            return
        given = [o for o in (OmegaConf.select(self.config, "hydra.overrides.hydra", default=[]) or [])
                 if str(o).startswith(("hydra.sweep.dir=", "search.dir=", "search.resume="))]
        task_given = [o for o in (OmegaConf.select(self.config, "hydra.overrides.task", default=[]) or [])
                      if str(o).startswith(("search.dir=", "search.resume="))]
        if given or task_given:
            return  # the user chose this directory: continue it with the new launcher
        raise ConfigError(
            f"{sweep_dir} holds a sweep whose phases ran through hydra/launcher={', '.join(sorted(ran))}, and this "
            f"command uses hydra/launcher={launcher}: rerun with hydra/launcher={sorted(ran)[0]} to continue it, "
            f"give hydra.sweep.dir={sweep_dir} to continue it through {launcher} anyway, or another hydra.sweep.dir "
            f"for a new sweep")

    def _split(self, arguments: List[str]) -> tuple[list[str], dict[str, Any]]:
        """The overrides every job repeats, and the sweeps typed on the command line (key -> Hydra's parsed
        override; params.py says what each mode makes of them)."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        fixed: list[str] = []
        axes: dict[str, Any] = {}
        for override in parser.parse_overrides(arguments):
            if not override.is_sweep_override():
                fixed.append(override.input_line)
                continue
            axes[override.get_key_element()] = override
        return fixed, axes

"""The llmzero sweeper the way Hydra's own sweeper plugins (Optuna, Nevergrad, Ax) test themselves: discovery, one
job, batched jobs, a failing job, a custom sweep dir and subdir, callbacks, the params grammar and the results file.
Through Hydra's test fixtures with the basic launcher (jobs in this process) and the synthetic trainer; the search,
Hydra, its launcher and its callbacks are the real ones. (tests/test_sweeper.py holds discovery in the installed
wheel, failures debugged, resumed sweeps, submitit and Ray.)"""

import json
from pathlib import Path

import pytest
import yaml
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper

from llmzero.__main__ import main
from llmzero.paths import conf_dir

Plugins.instance()  # scan before any hydra_restore_singletons snapshot (see tests/test_sweeper.py)

FAST = ["hydra/sweeper=llmzero", "trainer=synthetic", "trainer.step_delay_s=0", "search.display=false",
        "wandb.mode=disabled", "cluster.poll_interval_s=0.01"]
TASK_FUNCTION = main.__wrapped__


def sweep(runner, tmp_path, *overrides, temp_dir=None):
    return runner(calling_file=None, calling_module="llmzero.__main__", task_function=TASK_FUNCTION,
                  config_path=str(conf_dir()), config_name="config", overrides=[*FAST, *overrides],
                  temp_dir=temp_dir or (tmp_path / "sweep"))


def jobs_of(out):
    return [r for batch in out.returns for r in batch]


def test_discovery():
    assert "LLMZeroSweeper" in [p.__name__ for p in Plugins.instance().discover(Sweeper)]


def test_one_job(hydra_sweep_runner, hydra_restore_singletons, tmp_path):
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=1") as s:
        (job,) = jobs_of(s.returns)
        assert job.status == JobStatus.COMPLETED and job.return_value == s.returns.search.tree[0].best_val


def test_batched_jobs_go_out_in_launcher_calls_of_at_most_max_batch_size(hydra_sweep_runner, hydra_restore_singletons,
                                                                        tmp_path):
    with sweep(hydra_sweep_runner, tmp_path, "sweeper.mode=grid", "hparams.learning_rate=1e-5,2e-5,3e-5",
               "cluster.max_concurrent=3", "hydra.sweeper.max_batch_size=2") as s:
        sizes = [len(batch) for batch in s.returns.returns]
        assert sizes == [2, 1] and len(s.returns.search.tree) == 3
        assert [j.hydra_cfg.hydra.job.num for j in jobs_of(s.returns)] == [0, 1, 2]


def test_a_failing_job_is_a_failed_phase_and_the_sweep_goes_on(hydra_sweep_runner, hydra_restore_singletons, tmp_path):
    # 32 prompts x 4 rollouts x 32 tokens > 1000 units of simulated memory: the analyzer halves the batch until it fits
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=5", "trainer.memory_budget=1000") as s:
        statuses = [j.status for j in jobs_of(s.returns)]
        assert statuses[0] == JobStatus.FAILED and JobStatus.COMPLETED in statuses


def test_a_custom_sweep_dir_and_subdir(hydra_sweep_runner, hydra_restore_singletons, tmp_path):
    where = tmp_path / "custom"
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=2", f"hydra.sweep.dir={where}",
               "hydra.sweep.subdir=job_${hydra.job.num}", temp_dir=where) as s:
        dirs = [Path(j.hydra_cfg.hydra.runtime.output_dir) for j in jobs_of(s.returns)]
        assert dirs == [where / "job_0", where / "job_1"] and (where / "tree.json").is_file()


class Recorder:
    """A Hydra callback, configured as users configure theirs (hydra.callbacks.<name>._target_)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _note(self, event: str, **what) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"event": event, **what}) + "\n")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._note("multirun_start")

    def on_multirun_end(self, config, **kwargs) -> None:
        self._note("multirun_end")

    def on_job_start(self, config, **kwargs) -> None:
        self._note("job_start", lr=config.hparams.learning_rate)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        self._note("job_end", status=job_return.status.name, value=job_return._return_value)


def test_callbacks_see_every_phase_job_with_its_own_hyperparameters(hydra_sweep_runner, hydra_restore_singletons,
                                                                   tmp_path):
    log = tmp_path / "callbacks.jsonl"
    with sweep(hydra_sweep_runner, tmp_path, "sweeper.mode=grid", "hparams.learning_rate=1e-5,3e-5",
               f"+hydra.callbacks.rec._target_={__name__}.Recorder", f"+hydra.callbacks.rec.path={log}") as s:
        tree = s.returns.search.tree
    events = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [e["lr"] for e in events if e["event"] == "job_start"]
    ends = [e for e in events if e["event"] == "job_end"]
    assert sorted(starts) == [1e-5, 3e-5]  # each job's config carries its phase's values
    assert sorted(e["value"] for e in ends) == sorted(n.best_val for n in tree)
    assert all(e["status"] == "COMPLETED" for e in ends)


@pytest.mark.parametrize("mode, overrides, check", [
    ("random", ["sweeper.trials=4", "hparams.learning_rate=tag(log, interval(1e-4, 1e-2))",
                "hparams.lora_rank=choice(4, 16)"],
     lambda tree, cfg: all(1e-4 <= n.hparams["learning_rate"] <= 1e-2 and n.hparams["lora_rank"] in (4, 16)
                           for n in tree) and len(tree) == 4),
    ("grid", ["hparams.rollouts=range(2, 7, 2)"],
     lambda tree, cfg: sorted(n.hparams["rollouts"] for n in tree) == [2, 4, 6]),
    ("adaptive", ["search.budget=3", "hparams.learning_rate=interval(1e-6, 1e-4)"],
     lambda tree, cfg: cfg["search"]["space"]["learning_rate"]["low"] == 1e-6
     and cfg["search"]["space"]["learning_rate"]["high"] == 1e-4
     and all(1e-6 <= n.hparams["learning_rate"] <= 1e-4 for n in tree)),
])
def test_the_params_grammar_on_the_command_line(hydra_sweep_runner, hydra_restore_singletons, tmp_path, mode,
                                                 overrides, check):
    with sweep(hydra_sweep_runner, tmp_path, f"sweeper.mode={mode}", *overrides) as s:
        cfg = yaml.safe_load((Path(s.temp_dir) / "config.yaml").read_text())
        assert check(s.returns.search.tree, cfg)


def test_params_from_the_sweepers_config_and_the_command_line_wins(hydra_sweep_runner, hydra_restore_singletons,
                                                                   tmp_path):
    params = ('++hydra.sweeper.params={hparams.learning_rate:"tag(log, interval(1e-4, 1e-2))",'
              'hparams.lora_rank:"choice(4, 16)"}')
    with sweep(hydra_sweep_runner, tmp_path, "sweeper.mode=random", "sweeper.trials=3", params,
               "hparams.lora_rank=choice(32)") as s:
        tree = s.returns.search.tree
        assert all(1e-4 <= n.hparams["learning_rate"] <= 1e-2 for n in tree)
        assert {n.hparams["lora_rank"] for n in tree} == {32}


def test_the_results_file_and_the_closing_lines(hydra_sweep_runner, hydra_restore_singletons, tmp_path, capsys):
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=3") as s:
        out = s.returns.search
        results = yaml.safe_load((Path(s.temp_dir) / "optimization_results.yaml").read_text())
    assert results["name"] == "llmzero" and results["best_value"] == out.best.best_val
    assert results["best_params"]["hparams.learning_rate"] == out.best.hparams["learning_rate"]
    assert results["best_path"] == [n.id for n in out.path] and results["recipe"] == "recipe.yaml"
    printed = capsys.readouterr().out
    assert "Best parameters: {" in printed and f"Best value: {out.best.best_val}" in printed


@pytest.mark.parametrize("overrides, words", [
    (["sweeper.mode=grid", "hparams.learning_rate=interval(1e-5, 1e-4)"], "a grid needs the values to list"),
    (["search.seed=0,1"], "sweep it with Hydra's basic sweeper"),
    (['++hydra.sweeper.params={hparams.learning_rate:"interval(1e-5"}'], "hydra.sweeper.params.hparams.learning_rate"),
    (["sweeper.mode=skill_agent", "agent=litellm", "hparams.lora_rank=choice(4, 8)"], "that mode chooses the values"),
])
def test_a_sweep_the_search_cannot_take_is_one_message(hydra_sweep_runner, hydra_restore_singletons, tmp_path,
                                                       capsys, overrides, words):
    with pytest.raises(SystemExit) as ended:
        with sweep(hydra_sweep_runner, tmp_path, *overrides):
            pass
    err = capsys.readouterr().err
    assert ended.value.code == 2 and words in err and err.count("llmzero: error:") == 1, err

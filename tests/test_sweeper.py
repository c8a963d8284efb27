"""The llmzero Hydra sweeper (`-m hydra/sweeper=llmzero`): discovery, an adaptive sweep, a failing job debugged, grid
axes from the command line, an interrupted sweep resumed, and Hydra's own multirun as the grid baseline.

Sweeps run through Hydra's own test fixtures (hydra_sweep_runner, hydra_restore_singletons) with the basic launcher
(jobs in this process), or through the real command line where a process must be interrupted. Hydra's
BatchedSweeperTestSuite does not apply: it sweeps a test app of Hydra's own, whose jobs this sweeper cannot run
(every job is one phase of an llmzero search).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus

from llmzero.__main__ import main
from llmzero.paths import conf_dir

# Scan Hydra's plugins before any hydra_restore_singletons snapshot: importing llmzero creates the ConfigStore, and
# on Hydra 1.4 a snapshot taken before the scan lacks the plugins' configs (hydra/sweeper/basic, ...), which a
# restore then drops for good, since the plugin modules, already imported, never register them again.
Plugins.instance()

REPO = Path(__file__).resolve().parents[1]
FAST = ["trainer=synthetic", "trainer.step_delay_s=0", "search.display=false", "wandb.mode=disabled",
        "cluster.poll_interval_s=0.01"]
TASK_FUNCTION = main.__wrapped__  # the function under @hydra.main, as Hydra's launchers call it


def sweep(runner, tmp_path, *overrides, sweeper="llmzero"):
    return runner(calling_file=None, calling_module="llmzero.__main__", task_function=TASK_FUNCTION,
                  config_path=str(conf_dir()), config_name="config",
                  overrides=[*([f"hydra/sweeper={sweeper}"] if sweeper else []), *FAST, *overrides],
                  temp_dir=tmp_path / "sweep")


def test_the_sweeper_is_discovered_in_the_editable_install():
    out = subprocess.run([sys.executable, "-m", "llmzero", "--info", "plugins"], capture_output=True, text=True,
                         cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LLMZeroSweeper" in out.stdout.split("Sweeper:")[1].split("Launcher:")[0]


def test_the_wheel_carries_the_plugin_where_hydra_finds_it(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("llmzero-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hydra_plugins/llmzero_sweeper/llmzero_sweeper.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared with other plugins
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # Run from the installed copy only: the checkout (and its editable plugins/ path) is taken off sys.path.
    checkout = [str(REPO), str(REPO / "plugins")]
    code = (f"import sys; sys.path[:] = [{str(target)!r}] + [p for p in sys.path if p and p not in {checkout!r}]; "
            "sys.argv = ['llmzero', '--info', 'plugins']; "
            "import hydra_plugins.llmzero_sweeper as p, llmzero; "
            f"assert p.__file__.startswith({str(target)!r}) and llmzero.__file__.startswith({str(target)!r}); "
            "from llmzero.__main__ import cli; cli()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LLMZeroSweeper" in out.stdout


def test_an_adaptive_sweep_runs_each_phase_as_a_job_and_returns_the_best_recipe(hydra_sweep_runner,
                                                                                  hydra_restore_singletons, tmp_path):
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=4", "trainer.step_delay_s=0.002") as s:
        out = s.returns
        root = Path(s.temp_dir)
        tree = out.search.tree
        assert len(tree) == 4 and out.search.stop_reason.startswith("iteration budget")
        jobs = [r for batch in out.returns for r in batch]
        assert len(jobs) == 4 and all(r.status == JobStatus.COMPLETED for r in jobs)
        # each job ran one phase and returned its best validation score, in its own numbered folder
        assert [r.return_value for r in jobs] == [tree[i].best_val for i in range(4)]
        assert [r.hydra_cfg.hydra.job.num for r in jobs] == [0, 1, 2, 3]
        assert all((Path(r.hydra_cfg.hydra.runtime.output_dir) / "phase_result.json").is_file() for r in jobs)
        # what each job trained is on its own command line and in its config, not only in its spec file
        for r, node in zip(jobs, [tree[i] for i in range(4)]):
            assert f"++hparams.learning_rate={node.hparams['learning_rate']!r}" in r.overrides
            assert r.cfg.hparams.learning_rate == node.hparams["learning_rate"]
            assert r.cfg.hparams.batch_size == node.hparams["batch_size"]
        recipe = out.recipe
        assert recipe["result"]["node"] == out.search.best.id
        assert [p["node"] for p in recipe["phases"]] == [n.id for n in out.search.path]
        for name in ("multirun.yaml", "tree.json", "recipe.yaml", "report.html", "config.yaml", "jobs.jsonl"):
            assert (root / name).is_file(), name
        assert any(n.resume_from is not None for n in tree)  # adaptive: children resume from checkpoints


def test_a_failing_job_is_a_failed_node_that_the_error_analyzer_debugs(hydra_sweep_runner, hydra_restore_singletons,
                                                                          tmp_path):
    # batch 32 × 4 rollouts × 32 tokens needs 4096 > 1000 units of simulated memory: the root's job fails
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=4", "trainer.memory_budget=1000") as s:
        out = s.returns
        jobs = [r for batch in out.returns for r in batch]
        assert jobs[0].status == JobStatus.FAILED
        root = out.search.tree[0]
        assert root.status == "failed" and "out of memory" in root.error.lower()
        debug = out.search.tree[1]
        assert debug.kind == "debug" and debug.debug_of == 0 and debug.hparams["batch_size"] < 32
        assert any(n.status == "completed" for n in out.search.tree)  # the analyzer's fixes end in a phase that runs


def test_grid_axes_typed_on_the_command_line_land_in_one_tree(hydra_sweep_runner, hydra_restore_singletons, tmp_path):
    with sweep(hydra_sweep_runner, tmp_path, "sweeper.mode=grid", "hparams.learning_rate=1e-5,3e-5",
               "hparams.lora_rank=8,16") as s:
        tree = s.returns.search.tree
        assert sorted((n.hparams["learning_rate"], n.hparams["lora_rank"]) for n in tree) == [
            (1e-5, 8), (1e-5, 16), (3e-5, 8), (3e-5, 16)]
        assert all(n.resume_from is None for n in tree) and len(s.returns.returns) == 4


def test_jobs_that_share_one_output_folder_each_get_their_own_phases_result(hydra_sweep_runner,
                                                                          hydra_restore_singletons, tmp_path):
    # hydra.sweep.subdir=trial gives every job the same output folder; a node's result must still be its own
    with sweep(hydra_sweep_runner, tmp_path, "sweeper.mode=grid", "hparams.learning_rate=1e-4,1e-3",
               "cluster.max_concurrent=2", "hydra.sweep.subdir=trial") as s:
        root, tree = Path(s.temp_dir), s.returns.search.tree
        assert len(tree) == 2
        for node in tree:
            vals = [(r["val/score"], r["step"]) for r in map(json.loads, (root / "nodes" / str(node.id) /
                                                                        "metrics.jsonl").read_text().splitlines())
                    if "val/score" in r]
            best = max(v for v, _ in vals)
            assert node.best_val == best and node.best_step == min(st for v, st in vals if v == best), node.id
        assert (tree[0].best_val, tree[0].best_step) != (tree[1].best_val, tree[1].best_step)


def test_hydras_own_multirun_is_the_grid_baseline_with_one_search_per_job(hydra_sweep_runner, hydra_restore_singletons,
                                                                         tmp_path):
    with sweep(hydra_sweep_runner, tmp_path, "search.budget=1", "hparams.learning_rate=1e-5,3e-5",
               sweeper=None) as s:
        jobs = [r for batch in s.returns for r in batch]
        assert len(jobs) == 2
        for r in jobs:
            folder = Path(r.hydra_cfg.hydra.runtime.output_dir)
            saved = json.loads((folder / "tree.json").read_text())
            node = saved["nodes"][0] if isinstance(saved["nodes"], list) else next(iter(saved["nodes"].values()))
            assert r.return_value == node["best_val"] and len(saved["nodes"]) == 1


def _cli(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "llmzero", "-m", "hydra/sweeper=llmzero", *FAST, *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _launched(sweep_dir: Path) -> list[dict]:
    path = sweep_dir / "jobs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == "launched"]


def test_a_launcher_that_cannot_launch_stops_the_sweep_and_its_phase_runs_on_the_next_run(tmp_path):
    # No SLURM here: submitit cannot submit. That is no failed phase for the analyzer but the infrastructure's
    # fault: exit 5, the node stays to be launched, and a rerun with a launcher that works runs it.
    def cli(*extra):
        return subprocess.run([sys.executable, "-m", "llmzero", "-m", "hydra/sweeper=llmzero", *FAST,
                               "search.budget=2", *extra], capture_output=True, text=True, cwd=tmp_path, timeout=300)

    out = cli("hydra/launcher=submitit_slurm")
    assert out.returncode == 5, out.stderr[-2000:]
    assert "could not launch the job(s) of node(s) 0" in out.stderr and "Traceback" not in out.stderr
    sweep_dir = next((tmp_path / "multirun").iterdir())
    tree = json.loads((sweep_dir / "tree.json").read_text())
    assert [n["status"] for n in tree["nodes"]] == ["running"] and not tree["nodes"][0]["error"]

    out = cli()  # the basic launcher: the same default sweep dir, and node 0 is launched again
    assert out.returncode == 0, out.stderr[-2000:]
    tree = json.loads((sweep_dir / "tree.json").read_text())
    assert [n["status"] for n in tree["nodes"]] == ["completed", "completed"]

    # Now phases ran through `basic`: another launcher does not pick the sweep up without being told to.
    out = cli("hydra/launcher=submitit_local")
    assert out.returncode == 2 and "ran through hydra/launcher=basic" in out.stderr, out.stderr[-2000:]
    out = cli("hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep_dir}")  # named: continued (nothing left)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_cluster_executor_is_refused_under_the_sweeper_not_ignored(hydra_sweep_runner, hydra_restore_singletons,
                                                                      tmp_path, capsys):
    import pytest
    with pytest.raises(SystemExit) as ended:
        with sweep(hydra_sweep_runner, tmp_path, "cluster=ray", "cluster.address=127.0.0.1:1"):
            pass
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "cluster=ray" in err and "hydra/launcher=ray" in err and "without -m" in err
    assert not (tmp_path / "sweep" / "tree.json").exists()  # refused before anything ran


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    sweep_dir = tmp_path / "sw"
    args = ["trainer.step_delay_s=0.05", f"search.dir={sweep_dir}"]
    proc = _cli("search.budget=3", *args, cwd=tmp_path)
    deadline = time.time() + 120
    while not any(e["node"] == 1 for e in _launched(sweep_dir)) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]
    first = _launched(sweep_dir)

    again = _cli("search.budget=4", *args, cwd=tmp_path)  # the same command, with a bigger budget to extend it
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    assert "resuming search" in out
    launched = _launched(sweep_dir)
    numbers = [e["job"] for e in launched]
    assert numbers == list(range(len(numbers)))  # job numbers continue: no output folder is reused
    assert [e["node"] for e in launched].count(0) == 1  # the finished root's job was not run again
    tree = json.loads((sweep_dir / "tree.json").read_text())
    assert len(tree["nodes"]) == 4 and len(launched) > len(first)

    other = _cli("search.budget=4", "search.seed=7", *args, cwd=tmp_path)
    out, _ = other.communicate(timeout=120)
    assert other.returncode == 2 and "holds a different search: search.seed" in out and "Traceback" not in out


def test_through_submitit_each_phase_is_a_job_of_its_own_process(hydra_sweep_runner, hydra_restore_singletons,
                                                                  tmp_path):
    # hydra-submitit-launcher's local executor: the same plugin that submits to SLURM, running jobs as processes here
    with sweep(hydra_sweep_runner, tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
               "search.budget=3") as s:
        out = s.returns
        jobs = [r for batch in out.returns for r in batch]
        assert len(jobs) == 3 and all(r.status == JobStatus.COMPLETED for r in jobs)
        assert [r.return_value for r in jobs] == [out.search.tree[i].best_val for i in range(3)]
        submitted = [p for p in (Path(s.temp_dir) / ".submitit").iterdir() if p.name.isdigit()]
        assert len(submitted) == 3 and all(int(p.name) != os.getpid() for p in submitted)  # one process per job
        assert all(n.status == "completed" for n in out.search.tree)


def test_through_the_ray_launcher_every_batch_runs_on_one_local_ray(tmp_path):
    # hydra-ray-launcher starts a local Ray from the thread that launches the first batch, and Ray's daemons die with
    # that thread: every batch must come from the same one, or the second finds no Ray (one batch per phase here)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    try:
        sweep_dir = tmp_path / "sw"
        proc = subprocess.run(
            [sys.executable, "-m", "llmzero", "-m", "hydra/sweeper=llmzero", "hydra/launcher=ray", *FAST,
             "search.budget=3", f"search.dir={sweep_dir}", "+hydra.launcher.ray.init.num_cpus=1",
             "+hydra.launcher.ray.init.include_dashboard=false", f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
             # the launcher's own default, set here because its setdefault on the (struct) config fails on Hydra 1.4
             "+hydra.launcher.ray.init.object_store_memory=78643200"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        assert out.count("Ray Launcher is launching 1 jobs") == 3 and "Ray is already running" in out
        ended = [e for e in map(json.loads, (sweep_dir / "jobs.jsonl").read_text().splitlines()) if e["event"] == "ended"]
        assert [e["job"] for e in ended] == [0, 1, 2] and all(e["status"] == "completed" for e in ended)
        assert all(json.loads((sweep_dir / str(j) / "phase_result.json").read_text())["status"] == "completed"
                   for j in range(3))
        tree = json.loads((sweep_dir / "tree.json").read_text())
        assert [n["status"] for n in tree["nodes"]] == ["completed"] * 3
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

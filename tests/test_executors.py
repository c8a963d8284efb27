"""The executor seam: where a phase runs is chosen by cluster._target_, apart from what the trainer trains."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.schema import ConfigError
from llmzero.executors.local import LocalExecutor
from llmzero.trainers.base import PhaseCommand, PhaseSpec
from llmzero.state.phase_dir import PHASE_CONFIG
from llmzero.trainers.trl.backend import TRLTrainer

from test_bad_inputs import cfg

LAUNCHED = []


class RecordingExecutor(LocalExecutor):
    """A user's executor (named by cluster._target_), running phases locally and noting each launch."""

    def launch(self, trainer, spec):
        LAUNCHED.append((self.name, type(trainer).__name__, spec.node_id))
        return super().launch(trainer, spec)


class UnreachableExecutor(LocalExecutor):
    def check(self, trainer, search_dir, say=None):
        return ["cluster.address=http://nowhere:8265 cannot be reached: start the Ray head or fix the address"]


def test_a_user_executor_chosen_by_config_runs_every_phase(tmp_path):
    LAUNCHED.clear()
    res = run_search(cfg("cluster._target_=test_executors.RecordingExecutor", "cluster.name=mine", "search.budget=3"),
                     tmp_path / "run", Console(file=open(os.devnull, "w")))
    assert len(res.tree) == 3 and all(n.finished for n in res.tree)
    assert LAUNCHED == [("mine", "SyntheticTrainer", n.id) for n in res.tree]


def test_an_executor_that_reports_a_problem_stops_the_search_before_any_phase(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "llmzero", "trainer=synthetic", "wandb.mode=disabled",
                        "cluster._target_=test_executors.UnreachableExecutor", f"search.dir={tmp_path / 'run'}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "cluster.address=http://nowhere:8265 cannot be reached" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run" / "tree.json").exists()


def test_the_trl_backend_says_what_to_run_and_the_local_executor_where(tmp_path):
    trainer = TRLTrainer(task={"name": "arithmetic", "train_size": 8}, model={"path": "builtin:tiny"}, torch_threads=2)
    spec = PhaseSpec(node_id=0, hparams={}, output_dir=str(tmp_path / "nodes" / "0"), max_steps=2)
    command = trainer.phase_command(spec)
    assert isinstance(command, PhaseCommand) and command.phase_dir == spec.output_dir
    assert command.argv[:3] == [sys.executable, "-m", "llmzero.trainers.trl.phase"]
    assert command.argv[3] == str(tmp_path / "nodes" / "0" / PHASE_CONFIG) and command.resources.cpus == 2.0
    assert json.loads(Path(command.argv[3]).read_text())["spec"]["node_id"] == 0
    assert command.env["OMP_NUM_THREADS"] == "2"


def test_a_job_left_in_flight_by_another_executor_is_never_run_twice(tmp_path):
    """A search whose node is still a job on a cluster (its id in tree.json) cannot be continued by an executor
    that cannot find that job again: the phase would run twice on one directory."""
    out = tmp_path / "run"
    run_search(cfg("search.budget=1"), out, Console(file=open(os.devnull, "w")))
    tree = json.loads((out / "tree.json").read_text())
    tree["nodes"][0].update(status="running", job_id="llmzero-run-n0-0123abcd")
    (out / "tree.json").write_text(json.dumps(tree))
    with pytest.raises(ConfigError, match=r"node 0 was left running as job llmzero-run-n0-0123abcd .* cluster\._target_="
                                          r"llmzero\.executors\.local\.LocalExecutor cannot find that job again"):
        run_search(cfg("search.budget=2"), out, Console(file=open(os.devnull, "w")))
    assert json.loads((out / "tree.json").read_text())["nodes"][0]["status"] == "running"  # nothing touched

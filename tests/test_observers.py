"""Everything that watches a search is an observer with no-op defaults; one that raises never stops the search."""

import os

from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.search.observer import SearchObserver
from llmzero.tree import Cost, Node, NodeStatus, PhaseResult


class Recorder(SearchObserver):
    def __init__(self):
        self.events = []

    def on_search_start(self, view):
        self.events.append(("start", None, view.budget))

    def on_phase_start(self, view, node):
        self.events.append(("phase_start", node.id, node.status))

    def on_phase_metrics(self, view, node, records):
        assert {r["step"] for r in records} and view.running  # the running phase is in the view
        self.events.append(("metrics", node.id, len(records)))

    def on_phase_end(self, view, node):
        self.events.append(("phase_end", node.id, node.status))

    def on_search_end(self, view, result):
        self.events.append(("end", result.best.id, len(view.tree)))


class Broken(SearchObserver):
    def __getattribute__(self, name):
        if name.startswith("on_"):
            def fail(*args):
                raise RuntimeError(f"observer bug in {name}")
            return fail
        return super().__getattribute__(name)


def test_observers_see_every_event_in_order_and_a_broken_one_is_skipped(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["trainer=synthetic", "trainer.step_delay_s=0", "search.budget=3",
                                                       "search.display=false", "wandb.mode=disabled"])
    rec = Recorder()
    res = run_search(cfg, tmp_path / "run", Console(file=open(os.devnull, "w")), observers=[Broken(), rec])
    assert len(res.tree) == 3
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and rec.events[0][2] == 3 and kinds[-1] == "end"
    for node in res.tree:
        mine = [e for e in rec.events if e[1] == node.id and e[0] != "end"]
        assert mine[0] == ("phase_start", node.id, NodeStatus.RUNNING)
        assert mine[-1] == ("phase_end", node.id, node.status) and node.finished
        assert {e[0] for e in mine[1:-1]} == {"metrics"} and sum(e[2] for e in mine[1:-1]) == node.steps_done


def test_a_node_takes_in_its_phase_result_in_one_step():
    node = Node(id=3, parent=1, kind="evolve", hparams={"lr": 1}, status=NodeStatus.RUNNING,
                cost=Cost(wall_s=10.0, agent_usd=0.5))
    node.absorb(PhaseResult(status="early_stopped", steps_done=20, best_val=0.7, best_step=15,
                            val_subscores={"a": 0.6}, test_score=0.65, checkpoints=[5, 10, 15, 20], wall_s=30.0),
                gpus_per_phase=4)
    assert (node.status, node.steps_done, node.best_val, node.best_step) == ("early_stopped", 20, 0.7, 15)
    assert node.val_subscores == {"a": 0.6} and node.test_score == 0.65 and node.checkpoints == [5, 10, 15, 20]
    assert node.cost.wall_s == 40.0 and node.cost.gpu_s == 120.0 and node.cost.agent_usd == 0.5
    assert node.finished_at is not None and node.validated
    node.absorb(PhaseResult(status="failed", error="OOM", wall_s=1.0, gpu_s=2.0))
    assert node.status == "failed" and node.error == "OOM" and node.cost.gpu_s == 122.0 and not node.validated

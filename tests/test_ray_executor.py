"""cluster=ray: phases as Ray jobs on a real local Ray head (one head for the whole module; no fake).

The head has 2 CPUs and declares 1 *logical* GPU (Ray schedules by count; no CUDA device exists or is used), so
GPU queueing and GPU-seconds are Ray's own. As root it runs in a mount namespace where one directory is private
to the workers (tests/ray_head.py), which makes "a search directory the workers cannot see" real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from llmzero.agents.base import StopDecision
from llmzero.agents.heuristic import HeuristicAgent
from llmzero.app import run_search
from llmzero.config.schema import ConfigError
from llmzero.executors.ray_jobs import RayExecutor, probe_targets
from llmzero.executors.ray_phase import RayPhase
from llmzero.trainers.base import PhaseCommand, PhaseSpec, Resources
from llmzero.trainers.synthetic import SyntheticTrainer

from ray_head import free_port, start_head
from test_bad_inputs import cfg

pytest.importorskip("ray.job_submission")
pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
STOP_REASON = "test stopper: node 1 is dominated"


class StopsNodeOne(HeuristicAgent):
    """The heuristic agent, except that as early stopper it stops node 1 at its first check and nothing else, and
    that node 2 gets a phase long enough that the test's `ray job stop` always lands while it runs (a 6-step phase
    could finish first on a loaded machine); the other phases keep 6 steps."""

    def propose(self, ctx):
        proposal = super().propose(ctx)
        if ctx.parent is not None:
            proposal.max_steps, proposal.epochs = (ctx.max_steps_cap if ctx.node_id == 2 else 6), None
        return proposal

    def should_stop(self, ctx):
        return StopDecision(ctx.node.id == 1, STOP_REASON if ctx.node.id == 1 else "continue")


@pytest.fixture(scope="module")
def head():
    h = start_head(num_cpus=2, num_gpus=1)
    yield h
    h.stop()


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"))


def ray_cfg(head, *overrides):
    return cfg("cluster=ray", f"cluster.address={head.address}", "cluster.poll_interval_s=0.2", *overrides)


def llmzero(*args, env=None, **kw):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "llmzero", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def jobs(head) -> dict[str, object]:
    return {j.submission_id: j for j in head.client().list_jobs() if (j.submission_id or "").startswith("llmzero-")}


def read_tree(out: Path) -> dict:
    return json.loads((out / "tree.json").read_text())


def events(out: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (out / "events.jsonl").read_text().splitlines()) if e["event"] == kind]


# ---------------------------------------------------------------------------------------- what a job is


def test_a_job_carries_the_phase_command_our_package_and_only_the_named_variables(tmp_path, monkeypatch):
    for name in ("LLMZERO_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)  # forwarded by default; a session fixture of another file may set one
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    monkeypatch.setenv("HF_HOME", "/shared/hf")
    monkeypatch.setenv("MY_TOKEN", "tok")
    executor = RayExecutor(pip=["rdkit==2025.9.1"], runtime_env={"pip": ["bm25s"], "env_vars": {"A": "1"}})
    env = executor.runtime_env({"OMP_NUM_THREADS": "1"})
    assert env["env_vars"] == {"HF_HOME": "/shared/hf", "OMP_NUM_THREADS": "1", "A": "1"}  # no key, no token
    assert env["pip"] == ["bm25s", "rdkit==2025.9.1"]
    assert env["py_modules"] == [str(Path(__import__("llmzero").__file__).parent)]
    named = RayExecutor(forward_env=["MY_TOKEN"], ship_package=False).runtime_env({})
    assert named["env_vars"] == {"MY_TOKEN": "tok"} and "py_modules" not in named
    trainer = SyntheticTrainer(task={"name": "arithmetic", "train_size": 64}, model={})
    spec = PhaseSpec(node_id=3, hparams=HP, output_dir=str(tmp_path / "phase dir"), max_steps=3)
    argv = trainer.phase_command(spec).argv
    assert argv[0] == sys.executable  # what it runs here; on a worker, cluster.python replaces it
    entry = RayExecutor(python="python3").entrypoint(["python3", *argv[1:]], tmp_path / "phase dir" / "log.txt")
    assert entry.startswith("python3 -m llmzero.executors.phase_log ") and f"'{tmp_path}/phase dir/log.txt' --" in entry


# ---------------------------------------------------------------------------------------------- bad input


def test_an_unreachable_address_is_one_clear_error(tmp_path):
    port = free_port()  # nothing listens there
    p = llmzero("trainer=synthetic", "cluster=ray", f"cluster.address=http://127.0.0.1:{port}", "wandb.mode=disabled",
                f"search.dir={tmp_path / 'run'}", cwd=tmp_path)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, err
    assert f"cluster.address='http://127.0.0.1:{port}' is not valid: no Ray job server answers there" in err
    assert "ray start --head" in err and "Traceback" not in err + out
    assert not (tmp_path / "run" / "tree.json").exists()


def test_a_phase_bigger_than_every_node_is_refused_before_anything_is_submitted(head, tmp_path):
    before = len(jobs(head))
    with pytest.raises(ConfigError, match=r"cluster.gpus_per_phase=2 is more than any node of the Ray cluster at "
                                          r"http://127.0.0.1:\d+ has \(the largest of its 1 node\(s\) has 1 GPUs\)"):
        run_search(ray_cfg(head, "cluster.gpus_per_phase=2"), tmp_path / "run", quiet())
    assert len(jobs(head)) == before and not (tmp_path / "run" / "tree.json").exists()


def test_a_search_directory_the_workers_cannot_see_is_refused(head):
    if head.private_dir is None:
        pytest.skip("needs root and unshare to give the Ray workers a directory of their own")
    run_dir = head.private_dir / "run"
    with pytest.raises(ConfigError) as err:
        run_search(ray_cfg(head), run_dir, quiet())
    assert f"search.dir={run_dir} is not shared with the Ray workers: a probe job on GPU node" in str(err.value)
    assert "every Ray node mounts at the same path" in str(err.value)
    assert not (run_dir / "tree.json").exists()


def test_a_runtime_env_that_does_not_build_is_refused_and_fails_a_phase_with_rays_message(head, tmp_path):
    broken = "+cluster.runtime_env.py_modules=[https://127.0.0.1:1/missing.zip]"
    with pytest.raises(ConfigError, match=r"the probe job on GPU node [\d.]+ of the Ray cluster at .* failed: "
                                          r"runtime_env setup failed"):
        run_search(ray_cfg(head, broken), tmp_path / "run", quiet())
    # The same env failing only once phases run (it broke after the probe): the node's error is Ray's message.
    executor = RayExecutor(address=head.address, runtime_env={"py_modules": ["https://127.0.0.1:1/missing.zip"]})
    trainer = SyntheticTrainer(task={"name": "arithmetic", "train_size": 64}, model={})
    spec = PhaseSpec(node_id=7, hparams=HP, output_dir=str(tmp_path / "phase"), max_steps=3)
    handle = executor.launch(trainer, spec)
    deadline = time.monotonic() + 120
    while not handle.done() and time.monotonic() < deadline:
        time.sleep(0.5)
    result = handle.result()
    assert result.status == "failed" and result.error.startswith(f"Ray job {handle.job_id} failed: runtime_env setup failed")
    assert "Connection refused" in result.error and "never started" in result.log_tail


def test_the_probe_runs_on_every_gpu_node_pinned_by_its_node_resource():
    def node(ip, gpus):
        return SimpleNamespace(node_ip=ip, resources_total={"CPU": 8.0, "GPU": float(gpus), f"node:{ip}": 1.0})

    cluster = [node("10.0.0.1", 0), node("10.0.0.3", 8), node("10.0.0.2", 8), node("10.0.0.2", 8)]
    assert probe_targets(cluster) == [("GPU node 10.0.0.2", {"node:10.0.0.2": 0.001}),
                                      ("GPU node 10.0.0.3", {"node:10.0.0.3": 0.001})]
    assert probe_targets([node("10.0.0.1", 0)]) == probe_targets(None) == [("a worker", {})]


class GpuClaimingTrainer(SyntheticTrainer):
    """A backend whose phase claims its GPUs from inside the job, as verl's workers do (tests/gpu_claiming_phase.py,
    a FAKE verl phase: Ray's logical GPU stands in for a real one)."""

    def phase_command(self, spec):
        spec.dir.mkdir(parents=True, exist_ok=True)
        return PhaseCommand([sys.executable, str(TESTS / "gpu_claiming_phase.py"), str(spec.dir), "1", "4"],
                            str(spec.dir), resources=Resources(gpus=1.0, cpus=0.0, placed_by_phase=True))


def test_phases_whose_workers_claim_the_gpus_queue_in_the_search_instead_of_failing(head, tmp_path):
    """cluster.max_concurrent=2 on a cluster with GPUs for one phase: Ray would start both jobs (they reserve no
    GPU) and the second would fail verl's free-GPU check; the search holds it back until the first has ended."""
    executor = RayExecutor(address=head.address, gpus_per_phase=1)
    trainer = GpuClaimingTrainer(task={"name": "arithmetic", "train_size": 64}, model={})
    handles = [executor.launch(trainer, PhaseSpec(node_id=i, hparams=HP, output_dir=str(tmp_path / str(i)),
                                                  max_steps=1)) for i in (8, 9)]
    seen_queued_while_first_ran = False
    deadline = time.monotonic() + 180
    while not all(h.done() for h in handles) and time.monotonic() < deadline:
        if (tmp_path / "8" / "claimed").exists() and not (tmp_path / "8" / "released").exists():
            seen_queued_while_first_ran |= handles[1].state == "queued"
        time.sleep(0.2)
    results = [h.result() for h in handles]
    assert [r.status for r in results] == ["completed", "completed"], [r.error for r in results]
    assert seen_queued_while_first_ran
    first_released = float((tmp_path / "8" / "released").read_text())
    assert float((tmp_path / "9" / "claimed").read_text()) >= first_released  # never both at once


class DeafTrainer(SyntheticTrainer):
    """A backend whose phase never reads its STOP file (a hung step, a trainer without the hook)."""

    def phase_command(self, spec):
        spec.dir.mkdir(parents=True, exist_ok=True)
        return PhaseCommand([sys.executable, "-c", "import time; time.sleep(120)"], str(spec.dir))


def test_a_phase_that_ignores_stop_is_ended_with_stop_job_after_the_grace_period(head, tmp_path):
    executor = RayExecutor(address=head.address, stop_grace_s=2.0)
    spec = PhaseSpec(node_id=5, hparams=HP, output_dir=str(tmp_path / "phase"), max_steps=3)
    handle = executor.launch(DeafTrainer(task={"name": "arithmetic", "train_size": 64}, model={}), spec)
    deadline = time.monotonic() + 60
    while handle.state == "queued" and time.monotonic() < deadline:
        handle.done()
        time.sleep(0.2)
    t0 = time.monotonic()
    handle.stop("dominated")
    while not handle.done() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (tmp_path / "phase" / "STOP").read_text() == "dominated\n"
    assert time.monotonic() - t0 >= 2.0 and head.client().get_job_status(handle.job_id) == "STOPPED"
    result = handle.result()
    assert result.status == "early_stopped" and result.error is None  # told to stop; what it saved stands


class FakeJobClient:
    """FAKE Ray job client: a head that restarts and forgets its jobs cannot be staged on one machine in a test."""

    def get_job_info(self, job_id):
        raise RuntimeError(f"Request failed with status code 404: Job {job_id} does not exist.")

    def get_job_logs(self, job_id):
        raise RuntimeError("404")


def test_a_job_that_ray_no_longer_knows_is_a_failed_phase_that_names_it(tmp_path):
    handle = RayPhase(FakeJobClient(), "llmzero-run-n4-abc", tmp_path, address="http://head:8265")
    assert handle.done()
    result = handle.result()
    assert result.status == "failed" and result.error.startswith(
        "Ray job llmzero-run-n4-abc is no longer known to the Ray cluster at http://head:8265")
    assert "Job llmzero-run-n4-abc does not exist" in result.error and "could not be read" in result.log_tail


class ErrorRepliesFor:
    """The real head's job client, except that its status requests get an HTTP error reply while `failing` says
    so (a dashboard too busy to answer, a proxy in front of it): the only part of a head in trouble a test can
    stage on one machine. Everything else (stop_job, logs) goes to the real head."""

    def __init__(self, client, code: int):
        self.client, self.code, self.failing = client, code, True

    def get_job_info(self, job_id):
        if self.failing:
            raise RuntimeError(f"Request failed with status code {self.code}: Internal Server Error.")
        return self.client.get_job_info(job_id)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.mark.parametrize("code", [500, 503])
def test_an_error_reply_is_not_a_lost_job_and_a_head_that_stays_silent_has_its_job_stopped(head, tmp_path, code,
                                                                                          monkeypatch):
    executor = RayExecutor(address=head.address)
    spec = PhaseSpec(node_id=6, hparams=HP, output_dir=str(tmp_path / "phase"), max_steps=3)
    real = executor.launch(DeafTrainer(task={"name": "arithmetic", "train_size": 64}, model={}), spec)
    flaky = ErrorRepliesFor(head.client(), code)
    handle = RayPhase(flaky, real.job_id, tmp_path / "phase", address=head.address)
    for _ in range(3):  # error replies: the phase is still running, not failed
        assert not handle.done()
        time.sleep(0.1)
    flaky.failing = False
    deadline = time.monotonic() + 60
    while head.client().get_job_status(real.job_id) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.1)  # past STATUS_EVERY_S, so the next poll asks again
    assert not handle.done() and handle.state == "running"
    # A reattaching search that meets an error reply watches the job rather than relaunching it.
    executor._client = flaky
    flaky.failing = True
    assert isinstance(executor.reattach(real.job_id, spec), RayPhase)
    # Silent past the limit: failed, named, and the job is stopped so it does not keep its GPUs.
    monkeypatch.setattr("llmzero.executors.ray_phase.UNREACHABLE_LIMIT_S", 1.0)
    time.sleep(1.1)
    handle.done()
    time.sleep(1.1)
    assert handle.done()
    result = handle.result()
    assert result.status == "failed" and "has not answered for 1 s" in result.error
    assert f"status code {code}" in result.error and "asked Ray to stop the job" in result.error
    while head.client().get_job_status(real.job_id) not in ("STOPPED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert head.client().get_job_status(real.job_id) == "STOPPED"


# ------------------------------------------------------------------------------------------- searches


def test_phases_queue_in_ray_when_gpus_are_scarcer_than_slots(head, tmp_path, capsys):
    """1 logical GPU, 2 slots: Ray holds the second phase until the first frees the GPU; the display says which
    phases wait; each phase is charged its GPU × running time as Ray reports it."""
    out = tmp_path / "run"
    res = run_search(ray_cfg(head, "cluster.gpus_per_phase=1", "cluster.max_concurrent=2", "search.budget=4",
                             "trainer.step_delay_s=0.1", "hparams.max_steps=12", "search.max_steps_per_phase=12"),
                     out, Console(file=sys.stdout, width=200))
    printed = capsys.readouterr().out
    assert len(res.tree) == 4 and all(n.finished for n in res.tree)
    assert "queued (the executor's scheduler" in printed and "(1 running, 1 queued)" in printed
    # Two phases were in flight at once, yet never ran at the same time: the second waited in Ray's queue.
    t = {(e["event"], e["node"]): e["t"] for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
         if e["event"] in ("created", "finished") or (e["event"] == "phase_state" and e["state"] == "running")}
    runs = sorted((t[("phase_state", n.id)], t[("finished", n.id)]) for n in res.tree)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(runs, runs[1:])), runs
    assert any(t[("created", b.id)] < t[("finished", a.id)] and a.id < b.id for a in res.tree for b in res.tree)
    client = head.client()
    for node in res.tree:
        info = client.get_job_info(node.job_id)
        assert info.status == "SUCCEEDED"
        assert node.job_id.startswith(f"llmzero-run-n{node.id}-")  # the search's name (its directory), the node
        ray_s = (info.end_time - info.start_time) / 1000  # from submission: queueing included
        # running time only, 1 GPU: at most Ray's own span (queueing included); at least half the steps' sleep,
        # since the start is dated when a poll first sees RUNNING, which a loaded machine delays by a second or so
        assert 0.05 * node.steps_done <= node.cost.gpu_s <= ray_s + 0.5


HP = {"learning_rate": 1e-5, "kl_coef": 0.001, "temperature": 1.0, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2,
      "grad_clip": 1.0, "entropy_coef": 0.0, "batch_size": 8, "rollouts": 4, "response_length": 64,
      "norm_adv_by_std": True, "lora_rank": 8}


def wait_for(what: str, check, search: subprocess.Popen, timeout: float = 400.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if search.poll() is not None:
            out, err = search.communicate()
            pytest.fail(f"the search ended (rc {search.returncode}) before {what}:\n{out[-3000:]}\n{err[-3000:]}")
        time.sleep(0.5)
    search.kill()
    pytest.fail(f"timed out waiting for {what}")


def running_with_metrics(head, out: Path, node_id: int) -> str | None:
    """The job id of node `node_id` once Ray runs it and it has logged a step."""
    try:
        node = next(n for n in read_tree(out)["nodes"] if n["id"] == node_id)
    except (OSError, ValueError, StopIteration):
        return None
    metrics = out / "nodes" / str(node_id) / "metrics.jsonl"
    if node["status"] != "running" or not node["job_id"] or not metrics.exists() or not metrics.read_text().strip():
        return None
    return node["job_id"] if head.client().get_job_status(node["job_id"]) == "RUNNING" else None


def test_trl_phases_as_ray_jobs_overlap_stop_survive_ray_job_stop_and_kill_9(head, tmp_path, default_tiny_cache):
    """Real GRPO phases (TRL, tiny model) as Ray jobs, two at a time: the early stopper's STOP reaches node 1 as a
    Ray job; node 2 killed with `ray job stop` becomes a failed node and the search goes on; the search killed
    with -9 while node 3 runs is rerun with the same command, finds node 3's job again, loses no finished node and
    leaves no job behind."""
    out = tmp_path / "run"
    args = ["cluster=ray", f"cluster.address={head.address}", "cluster.max_concurrent=2", "cluster.poll_interval_s=0.5",
            "search.budget=4", "hparams.max_steps=6", "search.max_steps_per_phase=400", "trainer.eval_every=3",
            "trainer.save_every=3", "agent._target_=test_ray_executor.StopsNodeOne",
            "search.early_stop.interval_steps=1", "search.early_stop.min_evals=1", "search.display=false",
            "wandb.mode=disabled", f"search.dir={out}"]
    env = {"LLMZERO_CACHE": str(default_tiny_cache["cache"])}
    search = llmzero(*args, env=env, cwd=tmp_path)

    job2 = wait_for("node 2 running", lambda: running_with_metrics(head, out, 2), search)
    ray = str(Path(sys.executable).parent / "ray")
    stop = subprocess.run([ray, "job", "stop", job2, "--address", head.address], capture_output=True, text=True,
                          timeout=120)
    assert stop.returncode == 0, stop.stderr
    job3 = wait_for("node 3 running", lambda: running_with_metrics(head, out, 3), search)
    search.send_signal(signal.SIGKILL)
    search.wait(30)
    before = {n["id"]: n for n in read_tree(out)["nodes"]}
    assert before[3]["status"] == "running" and head.client().get_job_status(job3) == "RUNNING"  # it outlived the search

    rerun = llmzero(*args, env=env, cwd=tmp_path)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-3000:]
    nodes = {n["id"]: n for n in read_tree(out)["nodes"]}
    assert len(nodes) == 4 and all(n["status"] in ("completed", "early_stopped", "failed") for n in nodes.values())
    # node 1: the early stopper's STOP file reached the Ray job, which saved and ended early-stopped
    assert nodes[1]["status"] == "early_stopped" and nodes[1]["stop_reason"] == STOP_REASON
    assert nodes[1]["steps_done"] < 6 and nodes[1]["checkpoints"][-1] == nodes[1]["steps_done"]
    assert json.loads((out / "nodes/1/result.json").read_text())["status"] == "early_stopped"
    # node 2: stopped from outside, a failed node with Ray's message; the search went on
    assert nodes[2]["status"] == "failed" and "was stopped from outside the search" in nodes[2]["error"]
    assert "Job was intentionally stopped" in nodes[2]["error"]
    # nodes 1 and 2 ran at the same time, by Ray's own clock
    client = head.client()
    spans = [client.get_job_info(nodes[i]["job_id"]) for i in (1, 2)]
    assert max(s.start_time for s in spans) < min(s.end_time for s in spans)
    # the rerun found node 3's job again instead of starting a second writer on its directory
    assert [e["node"] for e in events(out, "reattached")] == [3]
    assert nodes[3]["attempts"] == 1 and nodes[3]["job_id"] == job3 and nodes[3]["status"] == "completed"
    phase3 = str(out / "nodes" / "3")
    assert sum((j.metadata or {}).get("llmzero_phase_dir") == phase3 for j in jobs(head).values()) == 1
    # nothing finished before the kill was lost or re-run
    for i, n in before.items():
        if n["status"] in ("completed", "early_stopped", "failed"):
            assert {k: nodes[i][k] for k in ("status", "best_val", "attempts", "job_id")} == \
                   {k: n[k] for k in ("status", "best_val", "attempts", "job_id")}
    # and no job of this search is left running
    mine = {n["job_id"] for n in nodes.values()}
    assert all(str(j.status) in ("SUCCEEDED", "FAILED", "STOPPED") for k, j in jobs(head).items() if k in mine)
    assert "best path:" in stdout
    # the final scoring ran as a Ray job too, its files on the shared search directory
    meta = read_tree(out)["meta"]
    assert set(meta["base_model"]) == {"val", "test"} and 0 <= meta["base_model"]["test"] <= 1
    assert (out / "final_eval" / "log.txt").exists() and (out / "final_eval" / "eval_config.json").exists()
    assert any((j.metadata or {}).get("llmzero_eval") == str(out / "final_eval") and str(j.status) == "SUCCEEDED"
               for j in jobs(head).values())

"""Phases as Ray jobs (`cluster=ray`): Ray schedules, queues and runs them; the search only submits and watches.

Each phase is one job submitted through Ray's Job Submission API (the address `ray job submit --address` takes):

    entrypoint   python -m llmzero.executors.phase_log <phase_dir>/log.txt -- <the backend's phase command>
    resources    cluster.gpus_per_phase GPUs, cluster.cpus_per_phase CPUs (else what the backend asks for),
                 cluster.memory_gb_per_phase; with GPUs scarcer than cluster.max_concurrent, Ray queues the rest.
                 A verl phase reserves no GPU (its workers claim them once it runs), so the search queues it
                 instead, submitting it when the cluster's GPUs less its running phases' cover it (gpu_gate.py)
    runtime env  the search's own llmzero package (py_modules, cluster.ship_package), cluster.pip, the backend's
                 environment plus the variables named in cluster.forward_env (no other variable, so an API key
                 reaches a worker only when named there), and cluster.runtime_env for anything else Ray offers
    job id       chosen by the search and saved on the node in tree.json before submission, so a search killed
                 at any moment finds its jobs again (reattach) and never starts a second writer on a phase dir

Phase directories must be on storage every Ray node mounts at the same path as the search (search.dir on NFS,
EFS, Lustre). check() proves it before the first phase with a probe job on each GPU node (pinned there by the
node's own `node:<ip>` resource; the phases' GPU workers write checkpoints from those nodes) that writes into the
search directory, and refuses a cluster that cannot be reached or whose largest node has fewer GPUs than a phase asks for.
"""

from __future__ import annotations

import copy
import logging
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config.ray_cluster import RayClusterConfig
from ..state.phase_dir import LOG_FILE, RESULT_FILE
from ..trainers.base import EvalRequest, PhaseSpec, TrainerBackend, TrainerBase
from .gpu_gate import GpuGate
from .ray_phase import TERMINAL, RayPhase, brief, job_status, job_unknown, stop_job_quietly

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the llmzero package the search runs, shipped to the workers
WRAPPER = "llmzero.executors.phase_log"
CANNOT_WRITE = "llmzero: cannot write"  # what the wrapper prints when the phase directory is not on the worker


def _quiet(say: Callable[[str], None] | None) -> Callable[[str], None]:
    return say or (lambda text: None)


class RayExecutor:
    def __init__(self, **options: Any) -> None:
        self.opts = RayClusterConfig(**options)  # every setting checked by its schema
        self.name = self.opts.name
        self._client: Any = None
        self._gate: GpuGate | None = None

    # -- Executor --------------------------------------------------------------------------------
    def check(self, trainer: TrainerBackend, search_dir: Path, say: Callable[[str], None] | None = None) -> list[str]:
        say = _quiet(say)
        if getattr(type(trainer), "phase_command", TrainerBase.phase_command) is TrainerBase.phase_command:
            return [f"trainer={getattr(trainer, 'name', type(trainer).__name__)} cannot run on cluster=ray: its backend "
                    "runs phases only inside the search process (it has no phase_command); use cluster=local, or give "
                    "the backend a phase entry point (llmzero/trainers/base.py)"]
        try:
            client = self.client()
        except ConnectionError as exc:
            return [str(exc)]
        address = client.get_address()
        nodes = self._alive_nodes(address, say)
        problems = self._check_resources(nodes, address, say)
        return problems or self._probe(client, address, Path(search_dir), say, probe_targets(nodes))

    def launch(self, trainer: TrainerBackend, spec: PhaseSpec) -> RayPhase:
        client = self.client()
        command = trainer.phase_command(spec)
        if command is None:
            raise RuntimeError(f"the {trainer.name} backend gave no phase command for node {spec.node_id}")
        argv = list(command.argv)
        if argv and argv[0] == sys.executable:  # the search's interpreter path means nothing on a worker
            argv[0] = self.opts.python
        phase_dir = Path(command.phase_dir)
        (phase_dir / RESULT_FILE).unlink(missing_ok=True)  # a relaunch must not read the last attempt's
        job_id = spec.job_id or f"llmzero-n{spec.node_id}-{uuid.uuid4().hex[:12]}"
        cpus = self.opts.cpus_per_phase if self.opts.cpus_per_phase is not None else command.resources.cpus
        memory = self.opts.memory_gb_per_phase or command.resources.memory_gb
        handle = RayPhase(client, job_id, phase_dir, gpus=self.opts.gpus_per_phase,
                          stop_grace_s=self.opts.stop_grace_s, address=self._address())
        placed = command.resources.placed_by_phase

        def submit() -> None:
            client.submit_job(
                entrypoint=self.entrypoint(argv, phase_dir / LOG_FILE), submission_id=job_id,
                runtime_env=self.runtime_env(command.env), entrypoint_num_cpus=cpus,
                entrypoint_num_gpus=None if placed else (self.opts.gpus_per_phase or None),
                entrypoint_memory=int(memory * 1e9) if memory else None,
                metadata={"llmzero_node": str(spec.node_id), "llmzero_phase_dir": str(phase_dir)})

        if placed and self.opts.gpus_per_phase:
            # Ray cannot queue a job that reserves no GPU: the search does (gpu_gate.py).
            handle.defer(submit, self.gate())
            return handle
        try:
            submit()
        except (RuntimeError, OSError, ValueError) as exc:
            handle.fail(f"Ray refused the job for node {spec.node_id}: {brief(str(exc))}")
        return handle

    def reattach(self, job_id: str, spec: PhaseSpec) -> RayPhase | None:
        """The handle of a phase whose job a killed search left behind (still queued or running, or ended while
        nobody watched), or None when Ray does not know the job (never submitted, or the head restarted)."""
        client = self.client()
        try:
            client.get_job_info(job_id)
        except RuntimeError as exc:
            if job_unknown(exc):
                return None
            # Any other error reply is a head that cannot answer now, not proof the job is gone: relaunching would
            # put a second writer on the phase directory, so the handle watches it and asks again.
        except OSError:
            pass
        handle = RayPhase(client, job_id, spec.output_dir, gpus=self.opts.gpus_per_phase,
                          stop_grace_s=self.opts.stop_grace_s, address=self._address(), watch_start=False)
        if self.opts.gpus_per_phase:
            self.gate().hold(handle)
        return handle

    def gate(self) -> GpuGate:
        if self._gate is None:
            self._gate = GpuGate(self._total_gpus)
        return self._gate

    def _total_gpus(self) -> float | None:
        nodes = self._alive_nodes(self.client().get_address(), lambda text: None)
        return None if nodes is None else sum(float((n.resources_total or {}).get("GPU", 0)) for n in nodes)

    def evaluate(self, trainer: TrainerBackend, requests: Sequence[EvalRequest], workdir: Path
                 ) -> list[dict[str, float] | None]:
        """The search's final scoring as one Ray job, with the phases' resources and runtime env, its files in
        `workdir` on the shared search directory: the search's own machine may have no GPU, and the workers cannot
        read its /tmp. A backend without an evaluation process scores in the search process, as on cluster=local."""
        make = getattr(trainer, "eval_job", None)
        job = make(requests, workdir) if callable(make) and requests else None
        if job is None:
            return trainer.evaluate_batch(requests)
        client = self.client()
        argv = [self.opts.python if a == sys.executable else a for a in job.argv[:1]] + job.argv[1:]
        job_id = f"llmzero-eval-{uuid.uuid4().hex[:12]}"
        log = job.workdir / LOG_FILE
        log.unlink(missing_ok=True)
        cpus = self.opts.cpus_per_phase if self.opts.cpus_per_phase is not None else job.resources.cpus
        placed = job.resources.placed_by_phase
        try:
            client.submit_job(entrypoint=self.entrypoint(argv, log), submission_id=job_id,
                              runtime_env=self.runtime_env(job.env), entrypoint_num_cpus=cpus,
                              entrypoint_num_gpus=None if placed else (self.opts.gpus_per_phase or None),
                              metadata={"llmzero_eval": str(job.workdir)})
        except (RuntimeError, OSError, ValueError) as exc:
            return job.collect(f"Ray refused the evaluation job: {brief(str(exc))}")
        t0, status = time.monotonic(), "PENDING"
        while status not in TERMINAL:
            if job.timeout is not None and time.monotonic() - t0 > job.timeout:
                stop_job_quietly(client, job_id)
                status = f"stopped after trainer.eval_timeout_s={job.timeout:g} s"
                break
            time.sleep(1.0)
            try:
                status = job_status(client.get_job_info(job_id))
            except (RuntimeError, OSError) as exc:  # an error reply or no reply: ask again
                if isinstance(exc, RuntimeError) and job_unknown(exc):
                    status = "no longer known to Ray"
                    break
        text = log.read_text(errors="replace") if log.exists() else _job_logs(client, job_id)
        return job.collect(f"{text}\n(Ray job {job_id}: {status})")

    # -- what a job is made of --------------------------------------------------------------------
    def entrypoint(self, argv: list[str], log_path: Path) -> str:
        return shlex.join([self.opts.python, "-m", WRAPPER, str(log_path), "--", *argv])

    def runtime_env(self, env: dict[str, str]) -> dict[str, Any]:
        out = copy.deepcopy(dict(self.opts.runtime_env))
        forwarded = {name: os.environ[name] for name in self.opts.forward_env if name in os.environ}
        out["env_vars"] = {**forwarded, **env, **dict(out.get("env_vars") or {})}
        py_modules = list(out.get("py_modules") or [])
        if self.opts.ship_package:
            py_modules.append(str(PACKAGE_DIR))
        if py_modules:
            out["py_modules"] = py_modules
        if self.opts.pip:
            pip = out.get("pip")
            if isinstance(pip, dict):
                out["pip"] = {**pip, "packages": list(pip.get("packages") or []) + list(self.opts.pip)}
            else:
                out["pip"] = list(pip or []) + list(self.opts.pip)
        return out

    # -- Ray -------------------------------------------------------------------------------------
    def _address(self) -> str:
        return self.opts.address or "the Ray cluster found from $RAY_ADDRESS or on this machine"

    def client(self) -> Any:
        """Ray's JobSubmissionClient, connected once; ConnectionError with the setting to fix when it cannot be."""
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient

                # Ray's client logs every package upload at INFO on the search's terminal; only problems matter.
                for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
                    logging.getLogger(name).setLevel(logging.WARNING)
            except ImportError as exc:
                raise ConnectionError(f"cluster=ray needs Ray's job client, which did not import ({exc}): "
                                      "pip install 'ray[default]'") from None
            try:
                self._client = JobSubmissionClient(self.opts.address)
            except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
                raise ConnectionError(
                    f"cluster.address={self.opts.address!r} is not valid: no Ray job server answers there "
                    f"({brief(str(exc))}). Start one with `ray start --head` (it listens on port 8265) and pass its "
                    "address, e.g. cluster.address=http://<head>:8265") from None
        return self._client

    def _alive_nodes(self, address: str, say: Callable[[str], None]) -> list[Any] | None:
        """The cluster's live nodes (Ray's state API), or None when they cannot be listed."""
        try:
            from ray.util.state import list_nodes

            return [n for n in list_nodes(address=address, detail=True, raise_on_missing_output=False)
                    if str(n.state) == "ALIVE"]
        except Exception as exc:  # noqa: BLE001 - the state API is optional; the probe still runs
            say(f"Ray cluster at {address}: its nodes could not be listed ({brief(str(exc))}); resources not checked")
            return None

    def _check_resources(self, nodes: list[Any] | None, address: str, say: Callable[[str], None]) -> list[str]:
        """Refuse up front what Ray would queue forever: a phase bigger than the biggest node."""
        if nodes is None:
            return []

        def most(key: str) -> float:
            return max((float((n.resources_total or {}).get(key, 0)) for n in nodes), default=0.0)

        def total(key: str) -> float:
            return sum(float((n.resources_total or {}).get(key, 0)) for n in nodes)

        say(f"Ray cluster at {address}: {len(nodes)} node(s), {total('CPU'):g} CPUs, {total('GPU'):g} GPUs")
        if not self.opts.check_resources:
            return []
        per_node = ("gpus_per_node", self.opts.gpus_per_node) if self.opts.gpus_per_node else \
            ("gpus_per_phase", self.opts.gpus_per_phase)  # a multi-node phase needs its share on each of its nodes
        asks = [(*per_node, "GPU", 1.0, "GPUs"),
                ("cpus_per_phase", self.opts.cpus_per_phase, "CPU", 1.0, "CPUs"),
                ("memory_gb_per_phase", self.opts.memory_gb_per_phase, "memory", 1e9, "GB of memory")]
        return [f"cluster.{key}={value:g} is more than any node of the Ray cluster at {address} has (the largest of "
                f"its {len(nodes)} node(s) has {most(res) / unit:g} {what}): such a phase would wait in Ray's queue "
                f"forever. Ask for at most {most(res) / unit:g}, or add bigger nodes (on a cluster that starts nodes on "
                "demand, set cluster.check_resources=false)"
                for key, value, res, unit, what in asks if value and value > most(res) / unit]

    def _probe(self, client: Any, address: str, search_dir: Path, say: Callable[[str], None],
               targets: list[tuple[str, dict[str, float]]]) -> list[str]:
        """On every target node, a job with the phases' runtime env writes a file into the search directory; each
        must appear here. The jobs run side by side, so a cluster of many GPU nodes costs one probe's time."""
        where = ", ".join(label for label, _ in targets)
        say(f"probing the Ray workers ({where}): a job on each writes a file into {search_dir} ...")
        t0 = time.monotonic()
        jobs = []
        for label, resources in targets:
            token = uuid.uuid4().hex[:12]
            jobs.append((label, resources, f"llmzero-probe-{token}", search_dir / f".llmzero-probe-{token}.log"))
        code = "import sys, llmzero; print('llmzero', llmzero.__version__, 'python', sys.version.split()[0])"
        for label, resources, job_id, probe in jobs:
            try:
                client.submit_job(entrypoint=self.entrypoint([self.opts.python, "-c", code], probe),
                                  submission_id=job_id, runtime_env=self.runtime_env({}), entrypoint_num_cpus=0,
                                  entrypoint_resources=resources or None)
            except (RuntimeError, OSError, ValueError) as exc:
                return [f"the Ray cluster at {address} refused the probe job for {label}: {brief(str(exc))} "
                        "(check cluster.runtime_env, cluster.pip and cluster.ship_package)"]
        for label, _, job_id, probe in jobs:
            problem = self._probe_result(client, address, search_dir, label, job_id, probe, t0)
            if problem:
                for _, _, other, _ in jobs:
                    stop_job_quietly(client, other)
                return [problem]
        say(f"probe job{'s' if len(jobs) > 1 else ''} ok in {time.monotonic() - t0:.1f} s: "
            f"{where} write{'s' if len(jobs) == 1 else ''} into {search_dir}")
        return []

    def _probe_result(self, client: Any, address: str, search_dir: Path, label: str, job_id: str, probe: Path,
                      t0: float) -> str | None:
        """None when the probe job on `label` ended well and its file is visible here, else the problem."""
        status, info = "PENDING", None
        while time.monotonic() - t0 < self.opts.probe_timeout_s:
            info = client.get_job_info(job_id)
            status = job_status(info)
            if status in TERMINAL:
                break
            time.sleep(0.5)
        not_shared = (f"search.dir={search_dir} is not shared with the Ray workers: a probe job on {label} of the "
                      f"cluster at {address} could not write {probe.name} there, or wrote it where this machine does "
                      "not see it. Put search.dir on storage every Ray node mounts at the same path (NFS, EFS, "
                      "Lustre) and run the search with that path")
        if status not in TERMINAL:
            stop_job_quietly(client, job_id)
            return (f"the probe job {job_id} on {label} did not finish within cluster.probe_timeout_s="
                    f"{self.opts.probe_timeout_s:g} s (Ray: {status}, {brief(getattr(info, 'message', ''))}); the "
                    "cluster may have no free CPU, or a runtime env still building: raise cluster.probe_timeout_s, "
                    f"or see `ray job logs {job_id} --address {address}`")
        if status != "SUCCEEDED":
            if CANNOT_WRITE in _job_logs(client, job_id):
                return not_shared
            return (f"the probe job on {label} of the Ray cluster at {address} failed: "
                    f"{brief(getattr(info, 'message', ''))}. A phase would fail the same way (check "
                    f"cluster.runtime_env, cluster.pip, cluster.python={self.opts.python!r}); its logs: "
                    f"`ray job logs {job_id} --address {address}`")
        if not _appears(probe):
            return not_shared
        probe.unlink(missing_ok=True)
        return None


def probe_targets(nodes: list[Any] | None) -> list[tuple[str, dict[str, float]]]:
    """Where the probe runs: on each GPU node (each `node:<ip>` resource Ray gives a node), since phases write
    their checkpoints from there; on any worker when the cluster has no GPU node or its nodes are unknown."""
    gpu_nodes = sorted({str(n.node_ip) for n in nodes or [] if float((n.resources_total or {}).get("GPU", 0)) > 0})
    if not gpu_nodes:
        return [("a worker", {})]
    return [(f"GPU node {ip}", {f"node:{ip}": 0.001}) for ip in gpu_nodes]


def _job_logs(client: Any, job_id: str) -> str:
    try:
        return str(client.get_job_logs(job_id))
    except (RuntimeError, OSError):
        return ""


def _appears(path: Path, wait_s: float = 10.0) -> bool:
    """Shared storage may show another machine's new file a few seconds late (NFS attribute caching); listing
    the directory makes the client look again."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if path.name in os.listdir(path.parent):
                return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)

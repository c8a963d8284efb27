"""A real local Ray head for the tests and benchmarks of cluster=ray (started with `ray start --head`).

Started as root, the head runs in a mount namespace of its own in which `private_dir` is an empty tmpfs:
every other path is the same for the search and the Ray workers, but a search directory under `private_dir`
is one the workers cannot see, as on a cluster whose nodes do not mount the search's storage. Without the
rights to do that (not root, no `unshare`), the head starts normally and `private_dir` is None.

Stopping kills only this head's processes (found by its temp dir), never another Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    address: str  # the Ray Jobs address (http://127.0.0.1:<dashboard port>)
    temp_dir: Path
    private_dir: Path | None
    startup_s: float

    def client(self):
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address)

    def stop(self) -> None:
        import psutil

        mine = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(str(self.temp_dir) in part for part in proc.info["cmdline"] or []):
                    mine.append(proc)
            except (psutil.Error, TypeError):
                continue
        for proc in mine:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(mine, timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


def start_head(num_cpus: int = 2, num_gpus: int = 0, env: dict[str, str] | None = None) -> RayHead:
    """A head with `num_cpus` CPUs whose jobs run this interpreter's environment (its bin/ first on PATH).

    `num_gpus` declares logical GPUs: Ray schedules and accounts for them by count, which is all a test of
    queueing and GPU-seconds needs; no CUDA device is involved."""
    temp_dir = Path(tempfile.mkdtemp(prefix="lzr-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    dash = free_port()
    ray = str(Path(sys.executable).parent / "ray")
    argv = [ray, "start", "--head", f"--temp-dir={temp_dir}", f"--port={free_port()}", f"--dashboard-port={dash}",
            "--dashboard-host=127.0.0.1", f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
            "--disable-usage-stats"]
    private = temp_dir / "private"
    private.mkdir()
    if _can_unshare():
        mount = f"mount -t tmpfs none {private}"
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mount} && exec "$0" "$@"', *argv]
    else:
        private = None
    full_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "RAY_USAGE_STATS_ENABLED": "0",
                # A private test cluster on 127.0.0.1. Ray 2.60 turns token auth on for any `ray start` on a machine
                # where a ray.init() once wrote ~/.ray/auth_token; the test clients would then need that token too.
                "RAY_AUTH_MODE": "disabled", **(env or {})}
    t0 = time.monotonic()
    r = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise RuntimeError(f"ray start failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    head = RayHead(f"http://127.0.0.1:{dash}", temp_dir, private, 0.0)
    deadline = time.monotonic() + 60
    while True:  # the job server comes up a little after `ray start` returns
        try:
            head.client()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                head.stop()
                raise
            time.sleep(0.5)
    head.startup_s = time.monotonic() - t0
    return head

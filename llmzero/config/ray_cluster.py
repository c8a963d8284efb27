"""Settings of `cluster=ray`: phases as Ray jobs (llmzero/executors/ray_jobs.py). Every default is here, once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .schema import ClusterConfig, ConfigError, _require

# Settings a phase reads from its environment that hold no secret; forwarded to the workers when set here.
# Anything else (an API key above all) reaches a worker only when the user names it in cluster.forward_env.
FORWARDED_BY_DEFAULT = ["LLMZERO_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
                        "WANDB_MODE"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# runtime_env keys the executor sets itself; the user's values are merged with its own
MERGED_RUNTIME_ENV = ("env_vars", "py_modules", "pip")


@dataclass
class RayClusterConfig(ClusterConfig):
    _target_: str = "llmzero.executors.ray_jobs.RayExecutor"
    name: str = "ray"
    # The Ray Jobs address (what `ray job submit --address` takes, http://<head>:8265). null: Ray's own lookup,
    # $RAY_ADDRESS, then a cluster started on this machine with `ray start --head`.
    address: Optional[str] = None
    cpus_per_phase: Optional[float] = None  # null: what the trainer backend asks for (TRL: trainer.torch_threads)
    memory_gb_per_phase: Optional[float] = None  # null: no memory reservation
    forward_env: List[str] = field(default_factory=lambda: list(FORWARDED_BY_DEFAULT))
    pip: List[str] = field(default_factory=list)  # packages Ray installs for each phase (runtime_env pip)
    runtime_env: Dict[str, Any] = field(default_factory=dict)  # any other Ray runtime_env field, passed through
    ship_package: bool = True  # the search's own llmzero goes to the workers (runtime_env py_modules)
    python: str = "python"  # the interpreter on the workers (in a pip runtime env, Ray's virtualenv provides it)
    check_resources: bool = True  # refuse a phase bigger than the biggest node (off where nodes start on demand)
    stop_grace_s: float = 300.0  # after writing STOP, how long a phase may take to save and end before stop_job
    probe_timeout_s: float = 300.0  # how long the start-up probe job may take (a runtime env may be building)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.address is None or bool(str(self.address).strip()), "cluster.address", self.address,
                 "null or the Ray Jobs address of the head, e.g. http://head:8265")
        _require(self.cpus_per_phase is None or self.cpus_per_phase >= 0, "cluster.cpus_per_phase",
                 self.cpus_per_phase, "null or a number ≥ 0")
        _require(self.memory_gb_per_phase is None or self.memory_gb_per_phase > 0, "cluster.memory_gb_per_phase",
                 self.memory_gb_per_phase, "null or a number > 0 (GB)")
        for name in self.forward_env:
            _require(isinstance(name, str) and bool(_ENV_NAME.match(name)), "cluster.forward_env", name,
                     "names of environment variables")
        _require(all(isinstance(p, str) and p.strip() for p in self.pip), "cluster.pip", self.pip,
                 "a list of pip requirement strings")
        _require(bool(str(self.python).strip()), "cluster.python", self.python, "the worker's python command")
        _require(self.stop_grace_s >= 0, "cluster.stop_grace_s", self.stop_grace_s, "a float ≥ 0 (seconds)")
        _require(self.probe_timeout_s > 0, "cluster.probe_timeout_s", self.probe_timeout_s, "a float > 0 (seconds)")
        env_vars = self.runtime_env.get("env_vars", {}) if isinstance(self.runtime_env, dict) else {}
        if not isinstance(env_vars, dict):
            raise ConfigError(f"cluster.runtime_env.env_vars={env_vars!r} is not valid: expected a mapping")

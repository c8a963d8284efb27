"""Weights & Biases tracking: one W&B run per training phase, plus one run for the whole search.

The search is one process that polls several running phases at once, so several W&B runs are
open concurrently in that process (``reinit="create_new"``). All runs of a search share
``group=search_id``; each phase run is named ``node-<id>`` with ``job_type=<node kind>``, and its
metrics are logged against the global step along the strategy path, so the curves of a path line
up in the W&B UI.

Tracking must never kill a search: any error raised by wandb (no network, no API key, a bad
setting) is logged once as a warning and turns the tracker off for the rest of the search.
``mode="disabled"`` never imports wandb at all (the import costs ~2 s).

Nothing is read from environment variables into what is logged: a run's config is exactly the
node's hyperparameters plus its tree position, and wandb's own metadata collection (command line,
git state, installed packages, machine info, system metrics, console capture) is switched off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.schema import WandbConfig as WandbSettings  # the wandb.* settings: one schema, one set of defaults
from ..tree import Node, NodeStatus

log = logging.getLogger(__name__)

STEP_KEYS = ("step", "global_step")
ERROR_CHARS = 2000  # node.error is truncated to this in the run summary
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
_RUN_ID_MAX = 64
_SERVICE_ENV = "WANDB_SERVICE"

# wandb.Settings for every run: quiet, and no collection beyond what we log explicitly.
# Keys unknown to the installed wandb are dropped (see _settings).
_RUN_SETTINGS: dict[str, Any] = {
    "silent": True,  # the settings form of WANDB_SILENT=true
    "quiet": True,
    "show_info": False,
    "show_warnings": False,
    "console": "off",  # no stdout/stderr capture (several runs share one process)
    "x_disable_stats": True,  # system metrics would describe the search process, not the phase
    "x_disable_meta": True,  # command line, host, executable, ...
    "x_disable_machine_info": True,
    "disable_git": True,
    "disable_code": True,
    "save_code": False,
    "x_save_requirements": False,
    "disable_job_creation": True,
}


def run_id(search_id: str, suffix: str) -> str:
    """A W&B run id from the search id: only [A-Za-z0-9_-], at most 64 characters.

    Deterministic, so the same (search, node, attempt) always maps to the same run; an id that
    would be too long keeps its head and gets a short hash of the full id, so it stays unique.
    """
    raw = f"{search_id}-{suffix}"
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "run"
    if len(clean) > _RUN_ID_MAX:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        clean = f"{clean[:_RUN_ID_MAX - 11]}-{digest}"
    return clean


def phase_run_id(search_id: str, node_id: int, attempt: int = 1) -> str:
    return run_id(search_id, f"node{node_id}-a{attempt}")


def _jsonable(value: Any) -> Any:
    """Config/summary values as plain JSON types (Path, tuple, set, objects -> str/list)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=repr)
    return str(value)


def _metric_value(value: Any) -> int | float | None:
    """A loggable number, or None for anything non-numeric. nan/inf are kept: they are information."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def record_step(record: dict[str, Any]) -> int | None:
    """The W&B step of a metric record: its global step, else its phase-local step."""
    for key in ("global_step", "step"):
        v = record.get(key)
        if v is None or isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            return int(f)
    return None


@dataclass
class _OpenRun:
    run: Any  # wandb Run
    run_id: str
    last_step: int | None = None


class WandbTracker:
    """One W&B run per phase (node), one for the search; every method is safe to call at any time.

    Methods are no-ops once the tracker is disabled (mode "disabled", or after a wandb error).
    """

    def __init__(self, settings: WandbSettings, search_id: str, search_dir: Path) -> None:
        self.settings = settings
        self.search_id = str(search_id)
        self.search_dir = Path(search_dir)
        self._enabled = settings.enabled
        self._runs: dict[int, _OpenRun] = {}
        self._search_run: Any = None
        self._lock = threading.RLock()
        self._wandb: Any = None

    # -- state -------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def wandb_dir(self) -> Path:
        """Where wandb writes its run directories (<dir>/wandb)."""
        return Path(self.settings.dir or self.search_dir) / "wandb"

    def open_node_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._runs)

    # -- phase runs --------------------------------------------------------------------------------
    def phase_started(self, node: Node, attempt: int = 1) -> None:
        if not self._enabled:
            return
        with self._lock:
            try:
                stale = self._runs.pop(node.id, None)
                if stale is not None:  # restarted without phase_finished: close the old attempt
                    self._finish(stale.run, exit_code=1)
                config = {str(k): _jsonable(v) for k, v in (node.hparams or {}).items()}
                config.update({"node_id": node.id, "kind": node.kind, "parent": node.parent,
                               "resume_from": node.resume_from, "resume_step": node.resume_step,
                               "attempt": int(attempt)})
                rid = phase_run_id(self.search_id, node.id, attempt)
                run = self._init(rid, name=f"node-{node.id}", job_type=node.kind, config=config)
                self._runs[node.id] = _OpenRun(run=run, run_id=rid)
            except Exception as exc:  # noqa: BLE001 - tracking must never kill the search
                self._fail("phase_started", exc)

    def phase_metrics(self, node_id: int, records: list[dict[str, Any]]) -> int:
        """Log new metric records of a running phase; returns how many were logged.

        A record whose step is not greater than the last one logged for this run (a resumed phase
        re-reading earlier records, a duplicate) is skipped: W&B steps only increase.
        """
        if not self._enabled or not records:
            return 0
        with self._lock:
            open_run = self._runs.get(node_id)
            if open_run is None:
                return 0
            n = 0
            try:
                for record in records:
                    step = record_step(record)
                    if step is None or (open_run.last_step is not None and step <= open_run.last_step):
                        continue
                    payload = {}
                    for key, value in record.items():
                        if key in STEP_KEYS:
                            continue
                        num = _metric_value(value)
                        if num is not None:
                            payload[str(key)] = num
                    if not payload:
                        continue
                    open_run.run.log(payload, step=step)
                    open_run.last_step = step
                    n += 1
            except Exception as exc:  # noqa: BLE001
                self._fail("phase_metrics", exc)
            return n

    def phase_finished(self, node: Node) -> None:
        if not self._enabled:
            return
        with self._lock:
            open_run = self._runs.pop(node.id, None)
            if open_run is None:
                return
            try:
                open_run.run.summary.update(self._node_summary(node))
                self._finish(open_run.run, exit_code=1 if node.status == NodeStatus.FAILED else 0)
            except Exception as exc:  # noqa: BLE001
                self._fail("phase_finished", exc)

    @staticmethod
    def _node_summary(node: Node) -> dict[str, Any]:
        error = node.error
        if error and len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 15] + " ...[truncated]"
        c = node.cost
        return _jsonable({
            "status": node.status, "best_val": node.best_val, "best_step": node.best_step,
            "test_score": node.test_score, "steps_done": node.steps_done, "max_steps": node.max_steps,
            "diagnosis": node.diagnosis, "stop_reason": node.stop_reason, "error": error,
            "cost/wall_s": c.wall_s, "cost/gpu_s": c.gpu_s,
            "cost/agent_tokens_in": c.agent_tokens_in, "cost/agent_tokens_out": c.agent_tokens_out,
            "cost/agent_cached_tokens": c.agent_cached_tokens, "cost/agent_calls": c.agent_calls,
            "cost/agent_usd": c.agent_usd,
        })

    # -- search run --------------------------------------------------------------------------------
    def search_finished(self, tree_rows: list[dict[str, Any]], plots: dict[str, Path],
                        summary: dict[str, Any]) -> None:
        """One search-level run: the per-node table, the plots as images, the outcome summary."""
        if not self._enabled:
            return
        with self._lock:
            try:
                wandb = self._import()
                # A resumed search that finishes again must not reuse the first search run's id.
                rid = run_id(self.search_id, f"search-{time.strftime('%Y%m%d%H%M%S')}")
                run = self._init(rid, name="search", job_type="search", config={"search_id": self.search_id})
                self._search_run = run
                payload: dict[str, Any] = {}
                columns, data = table_columns(tree_rows)
                if columns:
                    payload["search/nodes"] = wandb.Table(columns=columns, data=data)
                for name, path in (plots or {}).items():
                    path = Path(path)
                    if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                        log.debug("wandb: plot %s (%s) is not an image file, not logged", name, path)
                        continue
                    payload[f"plots/{name}"] = wandb.Image(str(path))
                if payload:
                    run.log(payload, step=0)
                run.summary.update(_jsonable(dict(summary or {})))
                self._search_run = None
                self._finish(run, exit_code=0)
            except Exception as exc:  # noqa: BLE001
                self._fail("search_finished", exc)

    # -- shutdown ----------------------------------------------------------------------------------
    def close(self, exit_code: int = 1) -> None:
        """Finish every open run (search crashed or interrupted). Never raises."""
        with self._lock:
            runs = [r.run for r in self._runs.values()]
            if self._search_run is not None:
                runs.append(self._search_run)
            self._runs.clear()
            self._search_run = None
            for run in runs:
                try:
                    self._finish(run, exit_code=exit_code)
                except Exception as exc:  # noqa: BLE001
                    log.debug("wandb: finishing a run on close failed: %s", exc)

    def __enter__(self) -> WandbTracker:  # noqa: PYI034
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exit_code=1 if exc_type is not None else 0)

    # -- internals ---------------------------------------------------------------------------------
    def _import(self) -> Any:
        if self._wandb is None:
            import wandb  # heavy (~2 s): only when tracking is on

            self._wandb = wandb
        return self._wandb

    def _settings(self) -> Any:
        wandb = self._import()
        wanted = dict(_RUN_SETTINGS, init_timeout=float(self.settings.init_timeout_s),
                      finish_timeout=max(0.0, float(self.settings.finish_timeout_s)))
        known = getattr(wandb.Settings, "model_fields", None)
        if known:
            wanted = {k: v for k, v in wanted.items() if k in known}
        return wandb.Settings(**wanted)

    def _init(self, rid: str, *, name: str, job_type: str, config: dict[str, Any]) -> Any:
        wandb = self._import()
        out_dir = Path(self.settings.dir or self.search_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        had_service_env = _SERVICE_ENV in os.environ
        run = wandb.init(
            id=rid,
            name=name,
            group=self.search_id,
            job_type=job_type,
            config=config,
            project=self.settings.project,
            entity=self.settings.entity,
            tags=list(self.settings.tags) or None,
            dir=str(out_dir),
            mode=str(self.settings.mode),
            reinit="create_new",  # several runs open at once in this process
            settings=self._settings(),
        )
        if not had_service_env:
            # wandb exports its service socket so child processes attach to it; the phases we
            # start are subprocesses that must not log into the search's runs.
            os.environ.pop(_SERVICE_ENV, None)
        return run

    @staticmethod
    def _finish(run: Any, exit_code: int) -> None:
        try:
            run.finish(exit_code=exit_code)
        except TypeError:  # a wandb without exit_code
            run.finish()

    def _fail(self, where: str, exc: BaseException) -> None:
        log.warning("wandb tracking disabled for the rest of the search (%s failed: %s: %s)",
                    where, type(exc).__name__, exc)
        self._enabled = False
        self.close(exit_code=1)


def table_columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Rows of dicts as (columns, data) for wandb.Table.

    Columns are the union of keys in first-seen order. A column whose non-null values are all
    numbers stays numeric (None for missing); any other column becomes strings (dicts and lists
    as JSON), since wandb.Table rejects columns of mixed types.
    """
    rows = [{str(k): v for k, v in row.items()} for row in rows or []]
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    by_col = {c: [row.get(c) for row in rows] for c in columns}
    kinds: dict[str, str] = {}
    for c, values in by_col.items():
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present):
            kinds[c] = "num"
        elif present and all(isinstance(v, bool) for v in present):
            kinds[c] = "bool"
        else:
            kinds[c] = "str"
    data = []
    for i in range(len(rows)):
        out = []
        for c in columns:
            v = by_col[c][i]
            if v is None:
                out.append(None)
            elif kinds[c] == "num":
                out.append(int(v) if isinstance(v, numbers.Integral) else float(v))
            elif kinds[c] == "bool":
                out.append(bool(v))
            elif isinstance(v, str):
                out.append(v)
            elif isinstance(v, (dict, list, tuple)):
                out.append(json.dumps(_jsonable(v), sort_keys=True))
            else:
                out.append(str(v))
        data.append(out)
    return columns, data


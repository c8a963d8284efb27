"""W&B tracking: one run per phase (several open at once), one search run, read back offline."""

import logging
import math
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from llmzero.tree import Cost, Node, NodeKind, NodeStatus
from llmzero.tracking import WandbSettings, WandbTracker, phase_run_id
from wandb_read import find_offline_runs, read_offline_run
from llmzero.tracking.wandb_runs import ERROR_CHARS, record_step, table_columns

SEARCH_ID = "gsm8k/run 7"  # '/' and ' ' are not allowed in W&B run ids: must be sanitized


def _png(path: Path, w: int = 4, h: int = 3) -> Path:
    """A tiny valid RGB PNG written by hand (no imaging library needed to make it)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([200, 30, 30]) * w for _ in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


# -- no wandb needed --------------------------------------------------------------------------------
def test_invalid_mode_names_the_setting():
    with pytest.raises(ValueError) as err:
        WandbSettings(mode="dryrun")
    msg = str(err.value)
    assert "wandb.mode" in msg and "'dryrun'" in msg
    assert all(m in msg for m in ("'offline'", "'online'", "'disabled'"))


def test_disabled_writes_nothing_and_never_imports_wandb(tmp_path):
    code = f"""
import sys
from pathlib import Path
from llmzero.tree import Node
from llmzero.tracking import WandbSettings, WandbTracker
d = Path({str(tmp_path)!r})
t = WandbTracker(WandbSettings(mode="disabled"), "s", d)
n = Node(0, None, "root", {{"learning_rate": 1e-5}})
t.phase_started(n)
assert t.phase_metrics(0, [{{"step": 1, "global_step": 1, "kl": 0.1}}]) == 0
t.phase_finished(n)
t.search_finished([{{"id": 0}}], {{}}, {{"best_node": 0}})
t.close()
assert not t.enabled
assert "wandb" not in sys.modules, sorted(m for m in sys.modules if "wandb" in m)
print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"
    assert list(tmp_path.iterdir()) == []


def test_run_ids_are_deterministic_and_sanitized():
    rid = phase_run_id(SEARCH_ID, 3, 2)
    assert rid == "gsm8k-run-7-node3-a2" == phase_run_id(SEARCH_ID, 3, 2)
    assert phase_run_id(SEARCH_ID, 3, 1) != rid
    long = phase_run_id("x" * 200, 1)
    assert len(long) <= 64 and long != phase_run_id("x" * 199, 1)
    assert set(long) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def test_record_step_prefers_global_step():
    assert record_step({"step": 2, "global_step": 7}) == 7
    assert record_step({"step": 2, "global_step": None}) == 2
    assert record_step({"step": 3.0}) == 3
    assert record_step({"kl": 0.1}) is None


def test_table_columns_unify_types():
    cols, data = table_columns([{"id": 0, "best_val": None, "hparams": {"lr": 1e-5}},
                                {"id": 1, "best_val": 0.5, "status": "failed", "hparams": "x"}])
    assert cols == ["id", "best_val", "hparams", "status"]
    assert data[0] == [0, None, '{"lr": 1e-05}', None]
    assert data[1] == [1, 0.5, "x", "failed"]


class _FakeRun:
    def __init__(self, fail_log=False):
        self.fail_log, self.finished, self.logged = fail_log, None, []
        self.summary = {}

    def log(self, data, step=None):
        if self.fail_log:
            raise RuntimeError("socket closed")
        self.logged.append((step, data))

    def finish(self, exit_code=None):
        self.finished = exit_code


class _FakeWandb:
    def __init__(self, fail_init=False, fail_log=False):
        self.fail_init, self.fail_log, self.runs, self.kwargs = fail_init, fail_log, [], []

    class Settings(dict):
        model_fields = None

    def init(self, **kwargs):
        if self.fail_init:
            raise RuntimeError("api_key not configured (no-tty)")
        self.kwargs.append(kwargs)
        self.runs.append(_FakeRun(self.fail_log))
        return self.runs[-1]


def test_wandb_errors_disable_tracking_with_one_warning(tmp_path, caplog):
    fake = _FakeWandb(fail_init=True)
    t = WandbTracker(WandbSettings(mode="online"), "s", tmp_path)
    t._wandb = fake
    with caplog.at_level(logging.WARNING, logger="llmzero.tracking.wandb_runs"):
        t.phase_started(Node(0, None, NodeKind.ROOT, {}))
        t.phase_started(Node(1, 0, NodeKind.EVOLVE, {}))
        t.phase_metrics(0, [{"step": 1, "kl": 0.1}])
        t.search_finished([], {}, {})
        t.close()
    assert not t.enabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "api_key" in warnings[0].getMessage()


def test_error_mid_search_finishes_open_runs(tmp_path, caplog):
    fake = _FakeWandb(fail_log=True)
    t = WandbTracker(WandbSettings(mode="offline"), "s", tmp_path)
    t._wandb = fake
    t.phase_started(Node(0, None, NodeKind.ROOT, {"lr": 1}))
    t.phase_started(Node(1, 0, NodeKind.EVOLVE, {"lr": 2}))
    assert [k["reinit"] for k in fake.kwargs] == ["create_new", "create_new"]
    with caplog.at_level(logging.WARNING):
        assert t.phase_metrics(0, [{"step": 1, "kl": 0.1}]) == 0
    assert not t.enabled and t.open_node_ids() == []
    assert [r.finished for r in fake.runs] == [1, 1]


# -- real wandb, offline ----------------------------------------------------------------------------
def test_offline_concurrent_phase_runs_and_search_run(tmp_path):
    pytest.importorskip("wandb")
    pytest.importorskip("PIL")  # wandb.Image reads the PNG with Pillow
    nan = float("nan")
    settings = WandbSettings(mode="offline", tags=["unit"])
    tracker = WandbTracker(settings, SEARCH_ID, tmp_path)
    root = Node(0, None, NodeKind.ROOT, {"learning_rate": 1e-5, "kl_coef": 0.04, "schedule": ("a", "b")},
                max_steps=4)
    child = Node(1, 0, NodeKind.EVOLVE, {"learning_rate": 3e-6, "kl_coef": 0.02}, resume_from=0,
                 resume_step=5, global_offset=5, max_steps=3)

    t0 = time.perf_counter()
    tracker.phase_started(root)
    tracker.phase_started(child)  # both open at once
    t_init = time.perf_counter() - t0
    assert tracker.open_node_ids() == [0, 1]

    # interleaved polls of the two phases
    assert tracker.phase_metrics(0, [{"step": 1, "global_step": 1, "reward/mean": 0.1, "kl": 0.0,
                                      "note": "text is skipped"}]) == 1
    assert tracker.phase_metrics(1, [{"step": 1, "global_step": 6, "reward/mean": 0.5, "kl": nan}]) == 1
    assert tracker.phase_metrics(0, [{"step": 2, "global_step": 2, "reward/mean": 0.2, "val/score": 0.3},
                                     {"step": 2, "global_step": 2, "reward/mean": 9.9}]) == 1  # duplicate
    assert tracker.phase_metrics(1, [{"step": 2, "global_step": 7, "val/score": 0.6},
                                     {"step": 1, "global_step": 6, "reward/mean": 7.7}]) == 1  # re-read
    assert tracker.phase_metrics(0, [{"step": 3, "global_step": 3, "reward/mean": 0.25}]) == 1
    assert tracker.phase_metrics(99, [{"step": 1, "kl": 0.0}]) == 0  # no run open: ignored

    root.status, root.best_val, root.best_step, root.test_score = NodeStatus.COMPLETED, 0.3, 2, 0.28
    root.steps_done, root.stop_reason = 3, "max_steps"
    root.cost = Cost(wall_s=12.5, gpu_s=10.0, agent_tokens_in=100, agent_tokens_out=20, agent_usd=0.01)
    child.status, child.error, child.steps_done = NodeStatus.FAILED, "Traceback\n" + "x" * 5000, 2
    t0 = time.perf_counter()
    tracker.phase_finished(child)
    tracker.phase_finished(root)
    t_finish = time.perf_counter() - t0
    assert tracker.open_node_ids() == []

    png = _png(tmp_path / "tree.png")
    rows = [{"id": 0, "kind": "root", "status": "completed", "best_val": 0.3},
            {"id": 1, "kind": "evolve", "status": "failed", "best_val": None, "error": "x"}]
    tracker.search_finished(rows, {"tree": png, "not_there": tmp_path / "missing.png"},
                            {"best_node": 0, "best_val": 0.3, "test_score": 0.28, "stop_reason": "budget"})
    tracker.close()
    assert tracker.enabled  # nothing failed
    print(f"\ntwo wandb.init {t_init:.2f}s, two finishes {t_finish:.2f}s")

    run_dirs = find_offline_runs(tmp_path)
    assert len(run_dirs) == 3 and all(p.parent == tmp_path / "wandb" for p in run_dirs)
    runs = {r.name: r for r in map(read_offline_run, run_dirs)}
    assert set(runs) == {"node-0", "node-1", "search"}
    assert {r.group for r in runs.values()} == {SEARCH_ID}

    r0, r1, rs = runs["node-0"], runs["node-1"], runs["search"]
    assert r0.id == phase_run_id(SEARCH_ID, 0, 1) and r1.id == phase_run_id(SEARCH_ID, 1, 1)
    assert (r0.job_type, r1.job_type, rs.job_type) == ("root", "evolve", "search")
    assert r0.project == "llmzero" and r0.tags == ["unit"]
    assert r0.config == {"learning_rate": 1e-5, "kl_coef": 0.04, "schedule": ["a", "b"], "node_id": 0,
                         "kind": "root", "parent": None, "resume_from": None, "resume_step": None, "attempt": 1}
    assert r1.config["learning_rate"] == 3e-6 and r1.config["parent"] == 0
    assert r1.config["resume_step"] == 5 and r1.config["resume_from"] == 0

    h0 = {row["_step"]: row for row in r0.history}
    assert sorted(h0) == [1, 2, 3]
    assert h0[1]["reward/mean"] == 0.1 and h0[1]["kl"] == 0.0
    assert not {"step", "global_step", "note"} & set(h0[1])
    assert h0[2]["reward/mean"] == 0.2 and h0[2]["val/score"] == 0.3  # the duplicate was skipped
    assert r0.series("reward/mean") == [(1, 0.1), (2, 0.2), (3, 0.25)]
    h1 = {row["_step"]: row for row in r1.history}
    assert sorted(h1) == [6, 7]  # global steps, not phase-local ones
    assert math.isnan(h1[6]["kl"]) and h1[6]["reward/mean"] == 0.5  # the re-read 7.7 was skipped
    assert h1[7]["val/score"] == 0.6

    assert r0.summary["status"] == "completed" and r0.summary["best_val"] == 0.3
    assert r0.summary["best_step"] == 2 and r0.summary["test_score"] == 0.28
    assert r0.summary["cost/wall_s"] == 12.5 and r0.summary["cost/agent_tokens_in"] == 100
    assert r0.exit_code == 0 and not r0.truncated
    assert r1.summary["status"] == "failed" and r1.summary["best_val"] is None
    assert len(r1.summary["error"]) <= ERROR_CHARS and r1.summary["error"].startswith("Traceback")
    assert r1.exit_code == 1

    assert rs.summary["best_node"] == 0 and rs.summary["stop_reason"] == "budget"
    assert rs.summary["search/nodes"]["_type"] == "table-file"
    table = rs.table("search/nodes")
    assert table["columns"] == ["id", "kind", "status", "best_val", "error"]
    assert [row[0] for row in table["data"]] == [0, 1] and table["data"][1][3] is None
    assert rs.summary["plots/tree"]["_type"] == "image-file"
    assert rs.media_path("plots/tree") is not None
    assert "plots/not_there" not in rs.summary

    # a killed writer leaves a torn log: what came before still reads
    torn = tmp_path / "torn" / "run-x.wandb"
    torn.parent.mkdir()
    data = next(r0.path.glob("run-*.wandb")).read_bytes()
    torn.write_bytes(data[:-10])
    cut = read_offline_run(torn.parent)
    assert cut.truncated and cut.exit_code is None and cut.config == r0.config

    # nothing else was written outside the wandb dir (besides this test's own files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["torn", "tree.png", "wandb"]


def test_restarted_phase_gets_a_new_run_and_closes_the_old_one(tmp_path):
    fake = _FakeWandb()
    t = WandbTracker(WandbSettings(mode="offline", project="p", entity="e"), "s", tmp_path)
    t._wandb = fake
    node = Node(2, 0, NodeKind.DEBUG, {"lr": 1}, resume_from=0, resume_step=5)
    t.phase_started(node, attempt=1)
    t.phase_metrics(2, [{"step": 1, "global_step": 6, "kl": 0.1}])
    t.phase_started(node, attempt=2)  # crash and resume without phase_finished
    assert [k["id"] for k in fake.kwargs] == ["s-node2-a1", "s-node2-a2"]
    assert fake.runs[0].finished == 1 and fake.runs[1].finished is None
    assert t.phase_metrics(2, [{"step": 1, "global_step": 6, "kl": 0.2}]) == 1  # a fresh run: no skip
    kw = fake.kwargs[1]
    assert (kw["group"], kw["name"], kw["job_type"], kw["project"], kw["entity"]) == ("s", "node-2", "debug", "p", "e")
    assert kw["config"]["attempt"] == 2 and kw["config"]["resume_step"] == 5
    assert kw["mode"] == "offline" and kw["dir"] == str(tmp_path)
    node.status = NodeStatus.COMPLETED
    t.phase_finished(node)
    assert fake.runs[1].finished == 0 and fake.runs[1].summary["status"] == "completed"

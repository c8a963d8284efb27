"""SubprocessPhase: the file protocol between the search and a phase process, with scripted phases."""

import sys
import textwrap
import time

from llmzero.trainers.subprocess_phase import SubprocessPhase

# A stand-in phase process (not a trainer): writes metrics, honours SIGTERM, can crash on request.
SCRIPT = textwrap.dedent("""
    import json, signal, sys, time
    from pathlib import Path
    from llmzero.trainers.base import checkpoint_dir, mark_checkpoint_complete
    from llmzero.trainers.child_main import die_with_parent, write_result
    die_with_parent()
    d, mode = Path(sys.argv[1]), sys.argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    for step in range(1, 200):
        rec = {"step": step, "reward/mean": step / 10}
        if step % 2 == 0:
            rec.update({"val/score": 0.1 * step if step < 6 else 0.3, "val/easy": 0.9, "test/score": 0.05 * step})
        with open(d / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\\n")
        print("step", step, flush=True)
        if mode == "crash" and step == 3:
            raise RuntimeError("boom at step 3")
        if step % 2 == 0 or stop:
            c = checkpoint_dir(d, step); c.mkdir(parents=True, exist_ok=True); mark_checkpoint_complete(c)
        if stop:
            write_result(d, "early_stopped", steps_done=step); sys.exit(0)
        if mode == "short" and step == 8:
            write_result(d, "completed", steps_done=step); sys.exit(0)
        time.sleep(0.02)
""")


def start(tmp_path, mode):
    script = tmp_path / "phase.py"
    script.write_text(SCRIPT)
    return SubprocessPhase([sys.executable, str(script), str(tmp_path / "p"), mode], tmp_path / "p")


def wait(h, timeout=30):
    t0 = time.time()
    while not h.done():
        assert time.time() - t0 < timeout
        time.sleep(0.02)


def test_completed_phase_result_comes_from_files(tmp_path):
    h = start(tmp_path, "short")
    wait(h)
    r = h.result()
    assert r.status == "completed" and r.steps_done == 8
    assert r.best_val == 0.4 and r.best_step == 4  # earliest of the best
    assert r.val_subscores == {"easy": 0.9} and r.test_score == 0.2
    assert r.checkpoints == [2, 4, 6, 8]
    assert [rec["step"] for rec in h.poll()] == list(range(1, 9))


def test_crash_without_result_is_failed_with_log_tail(tmp_path):
    h = start(tmp_path, "crash")
    wait(h)
    r = h.result()
    assert r.status == "failed"
    assert "exited with status 1" in r.error and "boom at step 3" in r.log_tail
    assert r.checkpoints == [2]


def test_graceful_stop_and_kill(tmp_path):
    h = start(tmp_path, "long")
    seen = []
    while len(seen) < 3 and not h.done():
        seen += h.poll()
        time.sleep(0.02)
    h.stop("dominated")
    wait(h)
    r = h.result()
    assert r.status == "early_stopped" and r.checkpoints[-1] == r.steps_done
    assert (tmp_path / "p" / "STOP").read_text().strip() == "dominated"

    (tmp_path / "k").mkdir()
    h2 = start(tmp_path / "k", "long")
    time.sleep(0.2)
    h2.kill()
    assert h2.done() and h2.result().status == "failed"

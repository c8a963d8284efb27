"""What every child process of a backend does around its own work (a phase: `python -m llmzero.trainers.<backend>.phase`,
an evaluation: `... .evaluate`): die with its parent, read the one JSON config named on its command line, log to
stdout, run, and leave its outcome in one file written atomically, with one error format, whatever went wrong."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Protocol

from ..atomic import write_json_atomic
from ..state.phase_dir import RESULT_FILE
from ..tree import PhaseStatus
from .base import PhaseSpec

log = logging.getLogger("llmzero.child")


def die_with_parent() -> None:
    """Called first thing in a child process (also as a subprocess's preexec_fn): if its parent is killed (even
    kill -9), it dies too, so a resumed search never races an orphan writing the same directory (Linux prctl)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def child_config(argv: list[str] | None, usage: str) -> tuple[dict[str, Any], str] | None:
    """Die with the parent, then (the config, its absolute path) of the one JSON file named on the command line.
    None, after printing the usage line, when it is not given."""
    die_with_parent()
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(f"usage: {usage}", file=sys.stderr)
        return None
    path = Path(args[0]).resolve()
    return json.loads(path.read_text()), str(path)


def log_to_stdout() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")


def error_text(exc: BaseException, frames: int = 0) -> str:
    """The error as every child reports it: `Type: message`, and with `frames` the traceback's last lines."""
    head = f"{type(exc).__name__}: {exc}"
    if not frames:
        return head
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip().splitlines()
    return head + "\n--- traceback (last lines) ---\n" + "\n".join(tb[-frames:])


def write_result(phase_dir: Path | str, status: str, *, error: str | None = None, steps_done: int = 0,
                 extra: dict[str, Any] | None = None) -> None:
    write_json_atomic(Path(phase_dir) / RESULT_FILE,
                      {"status": status, "error": error, "steps_done": steps_done, **(extra or {})})


class PhaseWork(Protocol):
    steps_done: int

    def run(self) -> str: ...  # the phase's final status (PhaseStatus)


def phase_main(argv: list[str] | None, module: str, start: Callable[[dict[str, Any], PhaseSpec], PhaseWork],
               cleanup: Callable[[PhaseSpec], None] = lambda spec: None) -> int:
    """A phase process: `start` builds the phase from its config, whose run() returns the status; result.json is
    written last, a failure included (with the traceback's last lines)."""
    found = child_config(argv, f"python -m {module} <phase_config.json>")
    if found is None:
        return 2
    config, _ = found
    log_to_stdout()
    spec = PhaseSpec.from_dict(config["spec"])
    work: PhaseWork | None = None
    try:
        work = start(config, spec)
        status = work.run()
    except BaseException as exc:  # noqa: BLE001 - every failure must reach result.json
        log.error("phase failed:\n%s", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        write_result(spec.dir, PhaseStatus.FAILED, error=error_text(exc, frames=12),
                     steps_done=work.steps_done if work is not None else 0)
        return 1
    finally:
        cleanup(spec)
    write_result(spec.dir, status, steps_done=work.steps_done)
    return 0


def each_request(requests: list[dict[str, Any]], score: Callable[[int, dict[str, Any]], dict[str, float]]
                 ) -> list[dict[str, Any]]:
    """{"scores": ...} or {"error": ...} per request, in order: one failed request does not cost the others."""
    results: list[dict[str, Any]] = []
    for i, request in enumerate(requests):
        what = f"[{i + 1}/{len(requests)}] {request.get('checkpoint') or 'base model'} on {request.get('split')}"
        try:
            scores = score(i, request)
        except Exception as exc:  # noqa: BLE001 - the request's failure is its result
            log.error("%s failed:\n%s", what, traceback.format_exc())
            results.append({"error": error_text(exc)})
            continue
        log.info("%s: score %.4f", what, scores.get("score", float("nan")))
        results.append({"scores": scores})
    return results


def eval_main(argv: list[str] | None, module: str,
              score_all: Callable[[dict[str, Any], str], list[dict[str, Any]]]) -> int:
    """An evaluation process: `score_all(config, config_path)` gives one result per request; the results file is
    written atomically, and a failure before any request (loading the model) fails every request with its reason."""
    found = child_config(argv, f"python -m {module} <eval_config.json>")
    if found is None:
        return 2
    config, path = found
    log_to_stdout()
    code = 0
    try:
        results = score_all(config, path)
    except BaseException as exc:  # noqa: BLE001 - every request fails with the reason
        log.error("evaluation failed:\n%s", traceback.format_exc())
        results, code = [{"error": error_text(exc)} for _ in config.get("requests", [])], 1
    write_json_atomic(config["output"], {"results": results})
    return code

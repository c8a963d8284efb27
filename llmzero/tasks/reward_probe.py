"""The child process that runs a candidate reward file on the check's cases (reward_check.py), so that a function
which hangs, exhausts memory or calls exit() costs a subprocess and never the search.

    python -m llmzero.tasks.reward_probe <request.json> <results.jsonl>

The request names the file, its scoring function and the cases. Each case's response is given, or written by the
file's `example_response(ground_truth, extra_info)` from a row's answer. One JSON line per case is appended to the
results file as soon as the case ends, so a parent that must kill this process still knows where it stopped.
Each call is cut at `call_limit_s` by a timer signal; a loop that never returns to Python is the parent's to kill.
"""

from __future__ import annotations

import importlib.util
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable


class CallTimeout(BaseException):
    """Raised in the candidate's code by the timer: a BaseException, so its `except Exception` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise CallTimeout()


def _timed(limit_s: float, call: Callable[[], Any]) -> tuple[Any, str | None, float]:
    """(value, error, seconds) of `call` cut at `limit_s`."""
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        value, error = call(), None
    except CallTimeout:
        value, error = None, f"took more than {limit_s:g} s"
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: the candidate's failure is the finding
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        value, error = None, f"raised {type(exc).__name__}" + (f": {detail}" if detail else "")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return value, error, time.perf_counter() - started


def _number(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, dict) and "score" in value:  # verl's dict form
        value = value["score"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"returned {type(value).__name__} {str(value)[:60]!r}, not a number"
    if not math.isfinite(float(value)):
        return None, f"returned {value!r}"
    return float(value), None


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    out = open(argv[1], "a", encoding="utf-8")
    limit = float(request["call_limit_s"])
    signal.signal(signal.SIGALRM, _on_alarm)

    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, ensure_ascii=True) + "\n")
        out.flush()

    spec = importlib.util.spec_from_file_location("llmzero_candidate_reward", request["file"])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    _, error, _ = _timed(limit * 5, lambda: spec.loader.exec_module(module))  # type: ignore[union-attr]
    score_fn = getattr(module, request["function"], None) if error is None else None
    writer = getattr(module, "example_response", None) if error is None else None
    if error is None and not callable(score_fn):
        error = f"defines no function {request['function']}(data_source, solution_str, ground_truth, extra_info)"
    if error is None and request["needs_writer"] and not callable(writer):
        error = "defines no function example_response(ground_truth, extra_info)"
    if error is not None:
        emit({"case": -1, "error": error})
        return 0
    for i, case in enumerate(request["cases"]):
        response, error = case.get("response"), None
        if response is None:
            response, error, _ = _timed(limit, lambda: writer(case["answer_of"], case["answer_extra"]))
            if error is None and not isinstance(response, str):
                error = f"example_response returned {type(response).__name__}, not a string"
            if error is not None:
                emit({"case": i, "error": f"example_response {error}", "seconds": 0.0})
                continue
        value, error, seconds = _timed(limit, lambda: score_fn(case["data_source"], response, case["ground_truth"],
                                                               case["extra_info"]))
        score = None
        if error is None:
            score, error = _number(value)
        emit({"case": i, "score": score, "error": error, "seconds": round(seconds, 4),
              "response": response[:200] if case.get("response") is None else None})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Whether a reward function (verl's signature) may be trusted with a search: the checks `task.reward=auto` runs on
held-out rows before it accepts a function, the LLM's or a built-in verifier's.

On rows the function's author did not see:
- each row's own answer, written as a response by the file's `example_response`, scores the highest score seen;
- the answer of another row (one whose answer differs) scores low: in the lower half of the scores seen;
- malformed responses (empty, about a megabyte, odd unicode, the prompt echoed back) return a finite number
  without raising, each within the per-call limit; the empty one, and an echo of a prompt that does not contain the
  answer, score below the highest.
The function runs in a child process (reward_probe.py) under a time limit; this module only reads what it wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .verifiers import normalise

__all__ = ["CheckReport", "Row", "builtin_source", "check_reward_file", "make_cases", "judge"]

HUGE_CHARS = 1_000_000
ODD_UNICODE = "答案：④ ½ 𝟙𝟚 \u202eevil\u202c é\u0301 \u0000 \ufeff 🤖" * 3
WRONG_AT_MOST = 0.5  # another row's answer must score in the lower half between the lowest and highest scores seen


@dataclass(frozen=True)
class Row:
    """One row as a reward function sees it."""

    prompt: str
    ground_truth: str
    data_source: str = ""
    extra_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckReport:
    passed: bool
    problems: list[str]
    cases: int
    scores: dict[str, list[float]]  # per case kind, the scores returned

    def reason(self, limit: int = 6) -> str:
        shown = self.problems[:limit]
        more = len(self.problems) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "problems": self.problems, "cases": self.cases,
                "scores": {k: [round(s, 4) for s in v] for k, v in self.scores.items()}}


def _short(text: str, n: int = 40) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def make_cases(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The cases for `rows` (each case: the row it scores against, and a response or an answer to write as one)."""
    cases: list[dict[str, Any]] = []

    def case(kind: str, i: int, response: str | None = None, answer_of: int | None = None) -> None:
        row, source = rows[i], rows[answer_of if answer_of is not None else i]
        cases.append({"kind": kind, "row": i, "data_source": row.data_source, "ground_truth": row.ground_truth,
                      "extra_info": row.extra_info, "response": response, "answer_of": source.ground_truth,
                      "answer_extra": source.extra_info, "other": answer_of})

    keys = [normalise(r.ground_truth) or r.ground_truth.strip() for r in rows]
    for i, row in enumerate(rows):
        case("reference", i)
        other = next((j for j in (*range(i + 1, len(rows)), *range(i)) if keys[j] != keys[i]), None)
        if other is not None:
            case("other", i, answer_of=other)
    for i, row in enumerate(rows[:4]):  # malformed responses: a few rows are enough to find a crash or a hang
        case("empty", i, response="")
        case("echo", i, response=row.prompt)
        case("unicode", i, response=ODD_UNICODE)
    case("huge", 0, response=("\\boxed{" + "9" * 7 + " the answer is " + "<answer>") * (HUGE_CHARS // 40))
    return cases


def judge(cases: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], rows: Sequence[Row]) -> CheckReport:
    """The verdict on the probe's `results` for `cases` (a pure function: the rules of the module docstring)."""
    problems: list[str] = []
    if results and results[0].get("case") == -1:
        return CheckReport(False, [f"the file {results[0]['error']}"], len(cases), {})
    by_case = {r["case"]: r for r in results}
    scores: dict[str, list[float]] = {}
    for i, c in enumerate(cases):
        r = by_case.get(i)
        what = _describe(c)
        if r is None:
            problems.append(f"{what}: no result (the process was stopped before it)")
        elif r.get("error"):
            problems.append(f"{what}: {r['error']}")
        else:
            scores.setdefault(c["kind"], []).append(r["score"])
    every = [s for v in scores.values() for s in v]
    if not every:
        return CheckReport(False, problems or ["no case returned a score"], len(cases), scores)
    hi, lo = max(every), min(every)
    if hi == lo:
        problems.append(f"every response scored {hi:g}: the function does not tell a right answer from a wrong one")
    for i, c in enumerate(cases):
        r = by_case.get(i)
        if r is None or r.get("error"):
            continue
        s, kind, row = r["score"], c["kind"], rows[c["row"]]
        if kind == "reference" and s < hi:
            problems.append(f"row {c['row']}'s own answer {_short(c['answer_of'])}, written as "
                            f"{_short(r.get('response') or '')}, scored {s:g}, below the highest score {hi:g}")
        elif kind == "other" and hi > lo and s > lo + WRONG_AT_MOST * (hi - lo):
            problems.append(f"row {c['row']} (answer {_short(row.ground_truth)}) scored {s:g} for row {c['other']}'s "
                            f"answer {_short(c['answer_of'])}: a wrong answer must score low")
        elif kind == "empty" and s >= hi and hi > lo:
            problems.append(f"the empty response scored the highest score {hi:g}")
        elif (kind == "echo" and s >= hi and hi > lo
              and normalise(row.ground_truth) not in normalise(row.prompt)):
            problems.append(f"row {c['row']}'s prompt echoed back scored the highest score {hi:g}, though it does "
                            "not contain the answer")
    problems = list(dict.fromkeys(problems))  # the same failure on several rows is one finding
    return CheckReport(not problems, problems, len(cases), scores)


def _describe(c: dict[str, Any]) -> str:
    kind = c["kind"]
    if kind == "reference":
        return f"row {c['row']}'s own answer {_short(c['answer_of'])}"
    if kind == "other":
        return f"row {c['row']} with row {c['other']}'s answer"
    if kind == "huge":
        return f"a {HUGE_CHARS // 1000}k-character response"
    return {"empty": "the empty response", "echo": f"row {c['row']}'s prompt echoed back",
            "unicode": "a response of odd unicode"}[kind]


def check_reward_file(path: Path, function: str, rows: Sequence[Row], call_limit_s: float = 2.0,
                      needs_writer: bool = True) -> CheckReport:
    """Run the checks on the file at `path` in a child process; the whole run is cut at a limit that grows with the
    number of cases, and a run cut short reports the case it was on."""
    cases = make_cases(rows)
    with tempfile.TemporaryDirectory(prefix="llmzero-reward-check-") as tmp:
        request, out = Path(tmp) / "request.json", Path(tmp) / "results.jsonl"
        request.write_text(json.dumps({"file": str(Path(path).resolve()), "function": function,
                                       "call_limit_s": call_limit_s, "needs_writer": needs_writer,
                                       "cases": cases}))
        out.touch()
        limit = 30 + call_limit_s * (2 * len(cases) + 5)
        failure = ""
        try:
            done = subprocess.run([sys.executable, "-m", "llmzero.tasks.reward_probe", str(request), str(out)],
                                  capture_output=True, text=True, timeout=limit, cwd=tmp)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
                failure = f"the check's process ended with exit code {done.returncode}: {tail}"
        except subprocess.TimeoutExpired:
            failure = f"the check's process ran past its limit of {limit:g} s"
        results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    report = judge(cases, results, rows)
    if failure:
        stopped = len(results)
        where = _describe(cases[stopped]) if stopped < len(cases) else "the end"
        report.problems.insert(0, f"{failure}, at {where}")
        report.passed = False
    return report


def builtin_source(name: str, tag: str) -> str:
    """A reward file for the built-in verifier `name`, so a built-in meets the same checks the same way."""
    return (f"from llmzero.tasks.verifiers import VERIFIER_REFERENCE, make_verifier\n\n"
            f"_verify = make_verifier({name!r}, {tag!r})\n\n\n"
            f"def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
            f"    return _verify(solution_str, str(ground_truth))\n\n\n"
            f"def example_response(ground_truth, extra_info=None):\n"
            f"    return VERIFIER_REFERENCE[{name!r}](str(ground_truth), {tag!r})\n")

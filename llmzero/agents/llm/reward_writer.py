"""The agent's LLM writes a task's reward file (`task.reward=auto`, llmzero/tasks/auto_reward.py): it reads a sample
of rows, replies with a Python file, and the file is accepted only when it passes the checks on held-out rows
(llmzero/tasks/reward_check.py); a rejected file goes back with what failed, up to task.reward.max_attempts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ...atomic import write_text_atomic
from ...tasks.reward_check import CheckReport, Row, check_reward_file
from ...tree import Cost
from .agent import LLMAgent
from .answers import AnswerError
from .prompts import RenderedPrompt, _fill

ROLE = "reward_writer"
FUNCTION = "compute_score"
ROW_CHARS = 1500  # a long prompt is cut in what the LLM reads; the checks use it whole
_CODE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass
class WrittenReward:
    source: str
    report: CheckReport
    attempts: list[dict[str, Any]] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)


def code_of(text: str) -> str:
    """The file in a reply: its last fenced Python block, or the whole reply when it is bare code."""
    blocks = _CODE.findall(text)
    if blocks:
        return blocks[-1].strip() + "\n"
    if "def " + FUNCTION in text:
        return text.strip() + "\n"
    raise AnswerError(f"the reply holds no ```python block defining {FUNCTION}; reply with the whole file in one")


def _cut(text: str) -> str:
    text = str(text)
    return text if len(text) <= ROW_CHARS else text[:ROW_CHARS] + f" [... {len(text) - ROW_CHARS} more characters]"


def rows_text(rows: Sequence[Row]) -> str:
    return "\n\n".join(f"### Row {i + 1}\nprompt:\n{_cut(r.prompt)}\nreference answer: {_cut(r.ground_truth)}\n"
                       f"data_source: {r.data_source}\nextra_info: {r.extra_info}" for i, r in enumerate(rows))


def write_reward(llm: LLMAgent, task: str, shown: Sequence[Row], held_out: Sequence[Row], workdir: Path,
                 max_attempts: int, call_limit_s: float, attempts: list[dict[str, Any]],
                 packages: str = "math_verify (if installed)") -> WrittenReward:
    """Ask `llm` for a reward file until one passes the checks on `held_out`; every file written goes to
    `workdir/attempts/`, every call to `workdir/agent_calls/`, every verdict to `attempts` (the caller's, so that
    it survives an AgentGaveUp when no file passes)."""
    templates = llm.prompts.load("reward_writer.yaml")
    system = _fill(templates["system"], "reward_writer.yaml:system", packages=packages, call_limit_s=call_limit_s)
    user = _fill(templates["user"], "reward_writer.yaml:user", task=task, n_rows=len(shown), rows=rows_text(shown))

    def accept(text: str) -> WrittenReward:
        try:
            source = code_of(text)
        except AnswerError as exc:
            attempts.append({"attempt": len(attempts) + 1, "candidate": "(no file)", "verdict": f"rejected: {exc}"})
            raise
        file = workdir / "attempts" / f"{len(attempts) + 1:02d}.py"
        write_text_atomic(file, source)
        report = check_reward_file(file, FUNCTION, held_out, call_limit_s)
        attempts.append({"attempt": len(attempts) + 1, "candidate": f"attempts/{file.name}",
                         "verdict": "accepted" if report.passed else f"rejected: {report.reason()}",
                         "checks": report.to_dict()})
        if not report.passed:
            raise AnswerError(report.reason())
        return WrittenReward(source, report, list(attempts))

    prompt = RenderedPrompt(ROLE, system, "", user, [])
    retry = lambda error: _fill(templates["retry"], "reward_writer.yaml:retry", error=error)  # noqa: E731
    return llm._converse(prompt, accept, workdir, retry=retry, reasks=max_attempts - 1)

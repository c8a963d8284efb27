"""`task.reward=auto`: the reward settled once per search, before any training, and kept in its directory.

    <search.dir>/reward/reward.json     what was accepted (a built-in verifier or a written file), every attempt's
                                        verdict, the checks' scores, the LLM's cost
    <search.dir>/reward/reward.py       the accepted file (a written reward)
    <search.dir>/reward/attempts/       each file the LLM wrote, accepted or not
    <search.dir>/reward/agent_calls/    the LLM's calls, as the roles' are saved

A rerun, a resumed search and every phase job read reward.json and never ask again. The rows the author of a
function reads and the rows that check it are disjoint draws from the training split (task.seed).
Offline, the built-in verifiers are tried in the order the rows suggest and the first to pass the same checks is
kept. Writing with an LLM is the agents' part (llmzero/agents/llm/reward_writer.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from ..atomic import read_json, write_json_atomic, write_text_atomic
from ..config.dataset_task import AUTO, RewardConfig, reward_settings
from .benchmark import unpack
from .hub import TaskDataError
from .reward_check import CheckReport, Row, builtin_source, check_reward_file

__all__ = ["FUNCTION", "REWARD_DIR", "builtin_order", "check_builtin", "is_auto", "pick_builtin",
           "sample_rows", "save_reward", "saved_reward", "settled_config", "with_saved_reward"]

REWARD_DIR = "reward"
RECORD = "reward.json"
SOURCE = "reward.py"
FUNCTION = "compute_score"
_LETTER = re.compile(r"^\(?([A-Ja-j])[).]?$")


def is_auto(task_cfg: dict[str, Any]) -> bool:
    """Whether a task section asks for `task.reward=auto` (only task=dataset has a reward section)."""
    return task_cfg.get("reward") is not None and reward_settings(task_cfg["reward"]).name == AUTO


def sample_rows(task: Any, shown: int, held_out: int) -> tuple[list[Row], list[Row]]:
    """(rows to show, rows to check on): disjoint, drawn from the training split with the task's seed."""
    train = list(task.splits()["train"])
    if len(train) < shown + 2:
        raise TaskDataError(f"task.reward=auto needs at least task.reward.shown_rows + 2 = {shown + 2} training rows "
                            f"(some to read, some held out to check the function on); the training split has "
                            f"{len(train)}")
    picked = random.Random(getattr(task, "seed", 0)).sample(train, min(len(train), shown + held_out))
    rows = [_row(ex, getattr(task, "name", "dataset")) for ex in picked]
    return rows[:shown], rows[shown:]


def _row(example: Any, name: str) -> Row:
    record = unpack(example.answer)
    extra = record.get("extra_info")
    return Row(prompt=example.prompt, ground_truth=str(record.get("answer", "")),
               data_source=str(record.get("data_source") or name), extra_info=extra if isinstance(extra, dict) else {})


def builtin_order(rows: Sequence[Row], tag: str, math_installed: bool) -> list[str]:
    """The built-in verifiers worth trying on `rows`, most specific first: a choice letter when the answers are
    letters, a tag or a box when the prompts ask for one, math when the answers are numbers or LaTeX, exact always."""
    n = max(1, len(rows))
    order = []
    if sum(bool(_LETTER.match(r.ground_truth.strip())) for r in rows) >= 0.9 * n:
        order.append("choice")
    asks_tag = sum(f"<{tag}>" in r.prompt for r in rows) >= 0.5 * n
    asks_box = sum("boxed" in r.prompt for r in rows) >= 0.5 * n
    mathy = sum(bool(re.search(r"\d|\\", r.ground_truth)) for r in rows) >= 0.9 * n
    if asks_tag:
        order.append("tag")
    if mathy and math_installed:
        order.append("math")
    if asks_box:
        order.append("boxed")
    order.append("exact")
    return order


def check_builtin(name: str, settings: RewardConfig, rows: Sequence[Row], workdir: Path) -> CheckReport:
    file = workdir / "attempts" / f"builtin-{name}.py"
    write_text_atomic(file, builtin_source(name, settings.tag))
    return check_reward_file(file, FUNCTION, rows, settings.call_limit_s)


def pick_builtin(settings: RewardConfig, shown: Sequence[Row], held_out: Sequence[Row], workdir: Path,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The offline choice: the first built-in verifier, in `builtin_order`, that passes the checks on the held-out
    rows. A TaskDataError naming each one's failure when none does."""
    math_installed = importlib.util.find_spec("math_verify") is not None
    attempts = []
    for name in builtin_order([*shown, *held_out], settings.tag, math_installed):
        report = check_builtin(name, settings, held_out, workdir)
        verdict = "accepted" if report.passed else f"rejected: {report.reason()}"
        progress(f"reward: built-in verifier {name} {verdict}")
        attempts.append({"attempt": len(attempts) + 1, "candidate": f"builtin:{name}", "verdict": verdict,
                         "checks": report.to_dict()})
        if report.passed:
            return {"kind": "builtin", "name": name, "tag": settings.tag, "author": "heuristic",
                    "attempts": attempts, "checks": report.to_dict()}
    tried = "; ".join(f"{a['candidate']}: {a['verdict']}" for a in attempts)
    raise TaskDataError(f"task.reward=auto found no built-in verifier that passes the checks on these rows ({tried}). "
                        "Name one (task.reward.name=exact|math|choice|boxed|tag), give a reward file "
                        "(task.reward.path=my_reward.py), or let an LLM write one (agent=claude or agent=litellm)")


def saved_reward(search_dir: Path) -> dict[str, Any] | None:
    path = Path(search_dir) / REWARD_DIR / RECORD
    return read_json(path) if path.is_file() else None


def save_reward(search_dir: Path, record: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    folder = Path(search_dir) / REWARD_DIR
    if source is not None:
        write_text_atomic(folder / SOURCE, source)
        record = {**record, "path": str((folder / SOURCE).resolve()), "function": FUNCTION}
    write_json_atomic(folder / RECORD, record)  # last: a record is only ever written beside its file
    return record


def resolved_reward(task_cfg: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The task section with `auto` replaced by what was accepted; the auto settings are kept for the report."""
    base = reward_settings(task_cfg.get("reward") or AUTO)
    accepted = (dict(name=record["function"], path=record["path"]) if record["kind"] == "file"
                else dict(name=record["name"], path=None))
    reward = dataclasses.replace(base, tag=record.get("tag", base.tag), **accepted)
    return {**task_cfg, "reward": dataclasses.asdict(reward)}


def settled_config(cfg: DictConfig, search_dir: Path) -> DictConfig:
    """`cfg` as a phase runs it: itself, or a copy with the search's accepted reward in place of auto."""
    task = OmegaConf.to_container(cfg.task, resolve=True)
    settled = with_saved_reward(task, search_dir)
    if settled is task:
        return cfg
    out = cfg.copy()
    OmegaConf.update(out, "task.reward", settled["reward"], merge=False)
    return out


def with_saved_reward(task_cfg: dict[str, Any], search_dir: Path) -> dict[str, Any]:
    """The task section a phase runs with: as it is, or with the search's accepted reward in place of auto."""
    if not is_auto(task_cfg):
        return task_cfg
    record = saved_reward(search_dir)
    if record is None:
        raise TaskDataError(f"task.reward=auto has no accepted reward in {Path(search_dir) / REWARD_DIR}: the search "
                            "settles it before its first phase; run the search, not a phase alone")
    return resolved_reward(task_cfg, record)

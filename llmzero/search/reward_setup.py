"""`task.reward=auto` settled before the first phase: replayed from the search directory when it was settled
before, else written by the agent's LLM or, for an agent without one, picked among the built-in verifiers
(llmzero/tasks/auto_reward.py has the record, llmzero/agents/llm/reward_writer.py the LLM's part)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from ..agents.base import AgentGaveUp
from ..config.dataset_task import reward_settings
from ..config.schema import ConfigError
from ..tasks.auto_reward import (FUNCTION, REWARD_DIR, is_auto, pick_builtin, sample_rows, save_reward, saved_reward,
                                 settled_config)
from ..tasks.base import build_task


def settle_reward(cfg: DictConfig, search_dir: Path, agent: Any, say: Callable[[str], None]) -> DictConfig:
    """`cfg` with the accepted reward in place of auto (the same `cfg` when its task asks for no auto reward)."""
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    if not is_auto(task_cfg):
        return cfg
    record = saved_reward(search_dir)
    if record is not None:
        say(f"reward: {_label(record)}, accepted before ({Path(search_dir) / REWARD_DIR})")
    else:
        record = _settle(task_cfg, Path(search_dir), agent, say)
        say(f"reward: {_label(record)} accepted after {len(record['attempts'])} attempt(s); "
            f"saved in {Path(search_dir) / REWARD_DIR}")
    return settled_config(cfg, search_dir)


def _label(record: dict[str, Any]) -> str:
    return (f"the built-in verifier {record['name']}" if record["kind"] == "builtin"
            else f"a function written by {record['author']}")


def _settle(task_cfg: dict[str, Any], search_dir: Path, agent: Any, say: Callable[[str], None]) -> dict[str, Any]:
    from ..agents.llm.agent import LLMAgent

    agent = getattr(agent, "llm", agent)  # the skill-based baseline's LLM writes it as the search's would
    settings = reward_settings(task_cfg["reward"])
    shown, held_out = sample_rows(build_task(task_cfg), settings.shown_rows, settings.held_out_rows)
    workdir = search_dir / REWARD_DIR
    if not isinstance(agent, LLMAgent):
        say(f"reward: picking a built-in verifier, checked on {len(held_out)} held-out rows")
        return save_reward(search_dir, pick_builtin(settings, shown, held_out, workdir, say))
    from ..agents.llm.reward_writer import write_reward

    say(f"reward: {agent.name} writes one from {len(shown)} rows; it is checked on {len(held_out)} others")
    attempts: list[dict[str, Any]] = []
    try:
        written = write_reward(agent, str(task_cfg.get("name", "dataset")), shown, held_out, workdir,
                               settings.max_attempts, settings.call_limit_s, attempts)
    except AgentGaveUp as exc:
        for a in attempts:
            say(f"reward: attempt {a['attempt']} {a['verdict']}")
        raise ConfigError(f"task.reward=auto: {agent.name} wrote no reward that passes the checks in "
                          f"{settings.max_attempts} attempt(s) ({exc}); its files are in {workdir / 'attempts'}. "
                          "Raise task.reward.max_attempts, or name a verifier or a reward file") from None
    for a in written.attempts:
        say(f"reward: attempt {a['attempt']} {a['verdict']}")
    cost = written.cost
    return save_reward(search_dir, {
        "kind": "file", "name": FUNCTION, "tag": settings.tag, "author": agent.name, "attempts": written.attempts,
        "checks": written.report.to_dict(), "usd": cost.agent_usd, "tokens_in": cost.agent_tokens_in,
        "tokens_out": cost.agent_tokens_out, "calls": cost.agent_calls}, written.source)

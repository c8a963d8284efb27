"""A task's splits as verl's RL dataset files, and the reward module verl loads.

One parquet row per example, in the schema verl's RLHFDataset reads:

    data_source   "<split>/<subtask>": verl groups validation metrics by it, so each subtask gets its own
                  val-core/<data_source>/acc/mean@1 and the split tells val from test (metrics_map.py)
    prompt        the chat: one user turn holding the task's plain-text prompt (verl applies the chat template)
    ability       the task's name
    reward_model  {"style": "rule", "ground_truth": example.answer}
    extra_info    {"split", "index", "subtask", "prompt"}: the rest of the Example, for the reward (reward.py)

`examples_from` reads such a file back into Examples, which is how the round trip is tested.

A task with a search tool (PaperSearchQA) also gets the two files through which verl's agent-loop workers find our
tool and our Search-R1 loop (write_search_configs): a tool config listing retrieval_tool.RetrievalTool, and an agent-loop
config registering retrieval_loop.SearchAgentLoop under SEARCH_AGENT.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ...tasks.base import Example

SEARCH_AGENT = "llmzero_search"  # the agent-loop name of retrieval_loop.SearchAgentLoop in verl's registry
SEARCH_LOOP_CLASS = "llmzero.trainers.verl.retrieval_loop.SearchAgentLoop"
SEARCH_TOOL_CLASS = "llmzero.trainers.verl.retrieval_tool.RetrievalTool"

REWARD_MODULE = '''\
# Written by llmzero for one verl phase: verl loads compute_score from this file
# (reward.custom_reward_function.path); it scores with the task of the phase's phase_config.json.
from llmzero.trainers.verl.reward import compute_score  # noqa: F401
'''


def data_source(split: str, subtask: str) -> str:
    return f"{split}/{subtask}"


def split_source(source: str) -> tuple[str, str]:
    """(split, subtask) of a data_source written by data_source()."""
    split, _, subtask = str(source).partition("/")
    return split, subtask


def rows(examples: Sequence[Example], split: str, task_name: str) -> list[dict[str, Any]]:
    return [{"data_source": data_source(split, ex.subtask),
             "prompt": [{"role": "user", "content": ex.prompt}],
             "ability": task_name,
             "reward_model": {"style": "rule", "ground_truth": ex.answer},
             "extra_info": {"split": split, "index": i, "subtask": ex.subtask, "prompt": ex.prompt}}
            for i, ex in enumerate(examples)]


def write_split(path: Path | str, examples: Sequence[Example], split: str, task_name: str) -> Path:
    from datasets import Dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not examples:
        raise ValueError(f"the {split} split of task {task_name!r} is empty: verl needs at least one row")
    Dataset.from_list(rows(examples, split, task_name)).to_parquet(str(path))
    return path


def examples_from(path: Path | str) -> list[Example]:
    from datasets import Dataset

    return [Example(prompt=r["extra_info"]["prompt"], answer=r["reward_model"]["ground_truth"],
                    subtask=r["extra_info"]["subtask"]) for r in Dataset.from_parquet(str(path))]


def subtask_counts(examples: Sequence[Example]) -> dict[str, int]:
    return dict(Counter(ex.subtask for ex in examples))


def write_reward_module(folder: Path | str) -> Path:
    path = Path(folder) / "reward_fn.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REWARD_MODULE)
    return path


def write_search_configs(folder: Path | str, phase_config: str) -> tuple[Path, Path]:
    """(tool config, agent-loop config) in the YAML shapes verl reads from rollout.multi_turn.tool_config_path and
    rollout.agent.agent_loop_config_path; the tool builds the task, and so its retriever, from `phase_config`."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tools = folder / "search_tool.yaml"
    tools.write_text(yaml.safe_dump({"tools": [{"class_name": SEARCH_TOOL_CLASS,
                                                "config": {"type": "native", "phase_config": str(phase_config)}}]}))
    loops = folder / "agent_loops.yaml"
    loops.write_text(yaml.safe_dump([{"name": SEARCH_AGENT, "_target_": SEARCH_LOOP_CLASS}]))
    return tools, loops

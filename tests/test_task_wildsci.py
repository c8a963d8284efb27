"""WildSci (llmzero/tasks/wildsci.py) on a fixture in the dataset's schema, read through the same loader as the hub."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.base import Example, build_task
from llmzero.tasks.wildsci import WildSciTask, format_prompt, subtask_name

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "wildsci.jsonl"


@pytest.fixture
def task():
    return WildSciTask(data_files=str(FIXTURE), seed=0)


def test_the_fixture_is_split_in_the_papers_proportions_deterministically(task):
    splits = task.splits()
    # 24 rows, fewer than 5000+500+500: 24*500//6000 = 2 each for val and test, 20 for train
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 2, "test": 2}
    assert "24 rows pooled" in task.note and "proportions" in task.note
    assert WildSciTask(data_files=str(FIXTURE), seed=0).splits() == splits
    prompts = [ex.prompt for split in splits.values() for ex in split]
    assert len(set(prompts)) == len(prompts)  # every row is a different prompt (options differ where questions repeat)
    assert task.subtasks == ["biological_sciences", "earth_and_environmental_sciences", "physical_sciences"]


def test_prompts_list_every_option_in_letter_order_and_ask_for_a_boxed_letter(task):
    ten = [ex for split in task.splits().values() for ex in split if ex.answer == "J"]
    assert ten, "the fixture has ten-option rows answered J"
    lines = ten[0].prompt.splitlines()
    listed = [line[0] for line in lines if len(line) > 2 and line[1] == "." and line[0].isupper()]
    assert listed == list("ABCDEFGHIJ")  # options absent from a row (None in the loaded table) are not listed
    assert "\\boxed{" in ten[0].prompt
    assert format_prompt("Q?", {"b": "two", "a": "one"}).index("a. one") < format_prompt("Q?", {"b": "two", "a": "one"}).index("b. two")


@pytest.mark.parametrize("completion, reward", [
    ("The tenth option holds. \\boxed{J}", 1.0),  # letter J
    ("\\boxed{j}", 1.0),
    ("<think>It is \\boxed{J}, surely.</think> On reflection \\boxed{A}", 0.0),  # inside thinking never counts
    ("<think>Maybe A. No: J.</think>\\boxed{J}", 1.0),
    ("<think>cut off before answering \\boxed{J}", 0.0),
    ("Answer: J", 1.0),
    ("\\boxed{K}", 0.0),  # not a WildSci letter
])
def test_reward_reads_the_final_letter(task, completion, reward):
    example = Example(prompt="…", answer="J", subtask="physical_sciences")
    assert task.reward(completion, example) == reward


def test_the_aggregate_is_the_mean_over_examples_with_a_subscore_per_discipline(task):
    examples = [Example("p1", "A", "physics"), Example("p2", "B", "physics"), Example("p3", "C", "physics"),
                Example("p4", "D", "biology")]
    completions = ["\\boxed{A}", "\\boxed{B}", "\\boxed{A}", "\\boxed{A}"]
    # by hand: physics 2/3, biology 0/1; score = 2 correct of 4 examples = 0.5 (weighted by examples, not by discipline)
    assert task.score(completions, examples) == pytest.approx({"score": 0.5, "physics": 2 / 3, "biology": 0.0})


def test_task_wildsci_composes_with_hydra_and_reads_a_local_copy(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["task=wildsci", f"task.data_files={FIXTURE}"])
    assert cfg.task.dataset == "JustinTX/WildSci" and cfg.task.train_size == 5000
    from omegaconf import OmegaConf

    built = build_task(OmegaConf.to_container(cfg.task, resolve=True))
    assert isinstance(built, WildSciTask) and sum(len(v) for v in built.splits().values()) == 24


def test_discipline_names_become_metric_names():
    assert subtask_name("Earth and environmental sciences") == "earth_and_environmental_sciences"
    assert subtask_name("  ") == "other"

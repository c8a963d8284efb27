"""SSMR-Bench (llmzero/tasks/ssmr.py) on a fixture in the dataset's schema, read through the same loader as the hub."""

import json
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.base import Example, build_task
from llmzero.tasks.ssmr import SSMRTask, shuffled_options, subtask_of, unescape_score

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "ssmr.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]


@pytest.fixture
def task():
    return SSMRTask(data_files=str(FIXTURE), seed=0)


def test_the_fixture_is_split_in_the_papers_proportions_deterministically(task):
    splits = task.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 2, "test": 2}
    assert "24 rows pooled" in task.note
    assert SSMRTask(data_files=str(FIXTURE), seed=0).splits() == splits
    assert task.subtasks == ["scale", "beat", "chord", "interval"]
    assert {ex.subtask for split in splits.values() for ex in split} == {"scale", "beat", "chord", "interval"}


def test_options_are_shuffled_per_row_deterministically_and_the_letter_recorded():
    letters = []
    for row in ROWS:
        options, letter = shuffled_options(row, seed=0)
        assert sorted(options) == sorted([row["correct_answer"]] + [row[f"incorrect_answer{i}"] for i in (1, 2, 3)])
        assert options["ABCD".index(letter)] == row["correct_answer"]
        assert shuffled_options(row, seed=0) == (options, letter)  # the same on every call (no salted hash)
        letters.append(letter)
    counts = Counter(letters)
    assert len(counts) >= 3 and max(counts.values()) < len(ROWS) / 2  # the data's "correct first" is gone
    assert [shuffled_options(r, seed=1)[1] for r in ROWS] != letters  # another seed, another order


def test_the_prompt_has_real_line_breaks_the_options_and_the_boxed_instruction(task):
    example = task.to_example(ROWS[0])
    assert "\\n" not in example.prompt and "K:C\nC D E F G A B c|" in example.prompt
    assert [line[:2] for line in example.prompt.splitlines() if line[:2] in ("A.", "B.", "C.", "D.")] == \
        ["A.", "B.", "C.", "D."]
    assert "\\boxed{" in example.prompt and ROWS[0]["question"] in example.prompt
    assert unescape_score("a\\nb\\r\\nc") == "a\nb\nc"


@pytest.mark.parametrize("completion, reward", [
    ("\\boxed{C}", 1.0),
    ("<think>I first thought \\boxed{A}</think>The interval is a fifth: \\boxed{C}", 1.0),
    ("<think>It must be \\boxed{C}.</think>\\boxed{A}", 0.0),  # the boxed letter inside thinking never counts
    ("<think>still thinking \\boxed{C}", 0.0),
    ("\\boxed{\\text{C}}", 1.0),
    ("\\boxed{E}", 0.0),  # past D is not an SSMR option
    ("C", 0.0),  # no \boxed{}, no stated answer
])
def test_reward_reads_the_final_boxed_letter(task, completion, reward):
    assert task.reward(completion, Example("…", "C", "interval")) == reward


def test_chord_categories_are_one_subtask():
    assert [subtask_of(c) for c in ("Chord", "Chord-e", "Chord-c", "Scale", "Beat", "Interval")] == \
        ["chord", "chord", "chord", "scale", "beat", "interval"]


def test_the_aggregate_is_the_mean_over_subtasks_computed_by_hand(task):
    examples = [Example("1", "A", "scale"), Example("2", "B", "scale"), Example("3", "C", "scale"),
                Example("4", "A", "scale"), Example("5", "D", "chord"), Example("6", "A", "interval"),
                Example("7", "B", "beat")]
    completions = ["\\boxed{A}", "\\boxed{B}", "\\boxed{C}", "\\boxed{B}", "\\boxed{D}", "\\boxed{B}", "\\boxed{A}"]
    # scale 3/4, chord 1/1, interval 0/1, beat 0/1 -> score (0.75 + 1 + 0 + 0) / 4 = 0.4375 (per example it would be 4/7)
    assert task.score(completions, examples) == pytest.approx(
        {"score": 0.4375, "scale": 0.75, "chord": 1.0, "interval": 0.0, "beat": 0.0})


def test_task_ssmr_composes_with_hydra_and_reads_a_local_copy():
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["task=ssmr", f"task.data_files={FIXTURE}"])
    assert cfg.task.dataset == "Sylence/SSMR-Bench" and cfg.task.test_size == 500
    built = build_task(OmegaConf.to_container(cfg.task, resolve=True))
    assert isinstance(built, SSMRTask) and sum(len(v) for v in built.splits().values()) == 24

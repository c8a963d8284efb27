"""The synthetic arithmetic task: deterministic disjoint splits, exact-match reward, per-subtask scores."""

import pytest

from llmzero.tasks.arithmetic import ArithmeticTask, extract_answer
from llmzero.tasks.base import Example, build_task, mean_scores


def test_splits_are_deterministic_disjoint_and_cover_subtasks():
    t = ArithmeticTask(train_size=300, val_size=30, test_size=30, seed=3)
    s = t.splits()
    assert {k: len(v) for k, v in s.items()} == {"train": 300, "val": 30, "test": 30}
    prompts = [e.prompt for split in s.values() for e in split]
    assert len(prompts) == len(set(prompts))
    assert {e.subtask for e in s["val"]} == {"add_2digit", "add_3digit", "mul_1x2digit"}
    assert ArithmeticTask(train_size=300, val_size=30, test_size=30, seed=3).splits() == s
    assert ArithmeticTask(train_size=300, val_size=30, test_size=30, seed=4).splits()["val"] != s["val"]
    for e in s["test"]:
        a, b = e.prompt.rstrip("=").replace("*", "+").split("+")
        assert int(e.answer) == (int(a) * int(b) if "*" in e.prompt else int(a) + int(b))


def test_exact_match_reward_and_subtask_scores():
    t = ArithmeticTask()
    ex = [Example("2+2=", "4", "add_2digit"), Example("3*10=", "30", "mul_1x2digit"), Example("1+1=", "2", "add_2digit")]
    assert t.reward(" 4\nmore", ex[0]) == 1.0 and t.reward("44", ex[0]) == 0.0 and t.reward("", ex[0]) == 0.0
    assert extract_answer("30 is it") == "30"
    scores = t.score(["4", "31", "2"], ex)
    assert scores == {"score": pytest.approx(2 / 3), "add_2digit": 1.0, "mul_1x2digit": 0.0}
    with pytest.raises(ValueError, match="2 rewards for 3 examples"):
        mean_scores([1.0, 0.0], ex)


def test_bad_task_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"only 720 exist"):
        ArithmeticTask(train_size=12000)
    with pytest.raises(ValueError, match=r"task.subtasks=\['div'\] not known"):
        ArithmeticTask(subtasks=["div"])
    with pytest.raises(ValueError, match="has no _target_"):
        build_task({"name": "x"})
    t = build_task({"_target_": "llmzero.tasks.arithmetic.ArithmeticTask", "name": "arithmetic", "val_size": 9})
    assert len(t.splits()["val"]) == 9

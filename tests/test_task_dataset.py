"""task=dataset: a user's own rows and reward (llmzero/tasks/dataset.py), on files made here."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.dataset import DatasetTask
from llmzero.tasks.hub import TaskDataError
from llmzero.tasks.verifiers import make_verifier


def gsm_rows(path: Path, n: int = 60) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            a, b = i % 17 + 1, i % 11 + 2
            fh.write(json.dumps({"question": f"Tom has {a} apples and buys {b}. How many?", "answer": str(a + b),
                                 "level": "easy" if a + b < 15 else "hard"}) + "\n")
    return path


def test_a_jsonl_with_named_fields_subtasks_and_a_builtin_verifier(tmp_path):
    task = DatasetTask(data_files=str(gsm_rows(tmp_path / "gsm.jsonl")), fields={"prompt": "question",
                       "subtask": "level"}, reward={"name": "boxed"}, template="{prompt}\nPut it in \\boxed{{}}.")
    splits = task.splits()
    assert sum(map(len, splits.values())) == 60 and set(task.subtasks) == {"easy", "hard"}
    ex = splits["train"][0]
    assert ex.prompt.endswith("Put it in \\boxed{}.") and task.reward(task.reference(ex), ex) == 1.0
    assert task.reward("<think>\\boxed{0}</think> no answer", ex) == 0.0
    scores = task.score([task.reference(e) for e in splits["val"]], splits["val"])
    assert scores["score"] == 1.0 and set(scores) >= {"easy"} | ({"hard"} & {e.subtask for e in splits["val"]})


def test_a_misnamed_field_names_the_key_and_the_columns(tmp_path):
    task = DatasetTask(data_files=str(gsm_rows(tmp_path / "gsm.jsonl")), fields={"prompt": "questoin"})
    with pytest.raises(TaskDataError, match=r"task.fields.prompt='questoin' is not a column .*'question'"):
        task.splits()


@pytest.mark.parametrize("name, response, reference, want", [
    ("exact", "The capital is\nThe Paris.", "paris", 1.0), ("exact", "Lyon", "Paris", 0.0),
    ("math", "so the answer is \\boxed{\\frac{1}{2}}", "0.5", 1.0), ("math", "\\boxed{3}", "0.5", 0.0),
    ("choice", "The answer is (c).", "C", 1.0), ("tag", "<answer> 42 </answer>", "42", 1.0),
    ("boxed", "\\boxed{" * 5000, "1", 0.0),
])
def test_builtin_verifiers(name, response, reference, want):
    assert make_verifier(name)(response, reference) == want


def verl_layout(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"data_source": "toy", "prompt": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": f"What is {i} + 1?"}],
             "reward_model": {"style": "rule", "ground_truth": str(i + 1)}, "extra_info": {"index": i}}
            for i in range(40)]
    data = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(data)
    reward = tmp_path / "my_reward.py"
    reward.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
                      "    return {'score': 1.0 if solution_str.strip().endswith(ground_truth) else 0.0}\n")
    return data, reward


def test_a_verl_parquet_and_reward_file_run_unchanged_under_trl(tmp_path):
    data, reward = verl_layout(tmp_path)
    register_configs()
    overrides = ["task=dataset", f"task.data_files={data}", "task.fields.answer=reward_model.ground_truth",
                 f"task.reward.path={reward}", "task.reward.name=compute_score", "+model.build.sft_steps=0",
                 "task.train_size=16", "task.val_size=4", "task.test_size=4", "hparams.response_length=8",
                 "hparams.batch_size=4", "hparams.rollouts=2",
                 "search.budget=1", "hparams.max_steps=2", "search.display=false", "wandb.mode=disabled"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
        compose(config_name="config", overrides=[*overrides, "trainer=verl"])  # composes under verl too
    task = DatasetTask(data_files=str(data), fields={"answer": "reward_model.ground_truth"},
                       reward={"name": "compute_score", "path": str(reward)})
    ex = task.splits()["train"][0]
    assert ex.prompt.startswith("Be brief.") and task.reward("it is " + json.loads(ex.answer)["answer"], ex) == 1.0
    res = run_search(cfg, tmp_path / "run", Console(file=open(os.devnull, "w")))
    assert res.tree[0].status == "completed" and res.tree[0].best_val is not None


def test_a_reward_file_that_does_not_import_or_lacks_the_function(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_module\n")
    with pytest.raises(TaskDataError, match="task.reward.path=.*does not import: ModuleNotFoundError"):
        DatasetTask(data_files="x.jsonl", reward={"name": "compute_score", "path": str(bad)})
    good = tmp_path / "good.py"
    good.write_text("def score(a, b, c, d):\n    return 1.0\n")
    with pytest.raises(TaskDataError, match=r"task.reward.name='compute_score' is not a function .*\['score'\]"):
        DatasetTask(data_files="x.jsonl", reward={"name": "compute_score", "path": str(good)})

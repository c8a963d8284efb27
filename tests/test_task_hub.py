"""Loading benchmark rows through datasets.load_dataset and cutting the paper's splits (llmzero/tasks/hub.py)."""

import json

import pytest

from llmzero.tasks.hub import PAPER_CAPS, TaskDataError, cut_splits, load_rows


def rows(n, prefix="q"):
    return [{"question": f"{prefix}{i}", "answer": str(i)} for i in range(n)]


def test_a_large_single_split_is_capped_at_the_papers_sizes_disjointly_and_deterministically():
    cut = cut_splits("wildsci", {"train": rows(7000)}, seed=3)
    sizes = {k: len(v) for k, v in cut.splits.items()}
    assert sizes == PAPER_CAPS
    ids = [r["question"] for split in cut.splits.values() for r in split]
    assert len(ids) == len(set(ids))  # disjoint
    assert cut_splits("wildsci", {"train": rows(7000)}, seed=3).splits == cut.splits
    assert cut_splits("wildsci", {"train": rows(7000)}, seed=4).splits != cut.splits
    assert "the paper's caps" in cut.note and "seed 3" in cut.note


def test_a_small_dataset_is_split_in_the_papers_proportions_and_says_so():
    cut = cut_splits("chemcot", {"train": rows(1495)}, seed=0)
    # 1495 rows in 5000:500:500 = 10:1:1 -> 124 val, 124 test, the rest train (computed by hand: 1495*500//6000)
    assert {k: len(v) for k, v in cut.splits.items()} == {"train": 1247, "val": 124, "test": 124}
    assert "fewer rows than the paper's 5000/500/500" in cut.note and "1495 rows pooled" in cut.note


def test_a_datasets_own_test_split_stays_the_test_split():
    cut = cut_splits("papersearchqa", {"train": rows(60, "tr"), "test": rows(30, "te")}, seed=0)
    assert all(r["question"].startswith("te") for r in cut.splits["test"]) and len(cut.splits["test"]) == 30
    assert all(r["question"].startswith("tr") for r in cut.splits["train"] + cut.splits["val"])
    assert len(cut.splits["train"]) + len(cut.splits["val"]) == 60 and len(cut.splits["val"]) == 60 * 500 // 5500
    assert "its own test split 'test' kept (30 rows)" in cut.note


@pytest.mark.parametrize("name", ["Test_textual", "TEST", "test_set"])
def test_a_test_split_is_kept_whatever_it_is_called(name):
    # SSMR-Bench's own test split is `Test_textual` on the hub
    cut = cut_splits("ssmr", {"Train_textual": rows(60, "tr"), name: rows(30, "te")}, seed=0)
    assert [r["question"] for r in cut.splits["test"]] and all(r["question"].startswith("te") for r in cut.splits["test"])
    assert f"its own test split {name!r} kept" in cut.note


def test_several_test_splits_need_one_named():
    by_split = {"train": rows(60, "tr"), "Test_textual": rows(30, "te"), "Test_visual": rows(30, "tv")}
    with pytest.raises(TaskDataError, match="several test splits .*task.test_split=<name>"):
        cut_splits("ssmr", by_split, seed=0)
    cut = cut_splits("ssmr", by_split, seed=0, test_split="Test_visual")
    assert all(r["question"].startswith("tv") for r in cut.splits["test"])
    with pytest.raises(TaskDataError, match=r"task.test_split='Test_audio' is not a split .*Test_textual"):
        cut_splits("ssmr", by_split, seed=0, test_split="Test_audio")


def test_a_local_copy_loads_through_load_dataset(tmp_path):
    path = tmp_path / "copy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(5)))
    loaded = load_rows("wildsci", "JustinTX/WildSci", data_files=str(path))
    assert loaded == {"train": rows(5)}
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(2)))
    assert load_rows("wildsci", "JustinTX/WildSci", data_files=str(folder)) == {"train": rows(2)}


def test_an_unreadable_dataset_names_it_and_the_local_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TaskDataError) as err:
        load_rows("chemcot", "OpenMol/ChemCoTBench", revision="main")
    message = str(err.value)
    assert "task=chemcot" in message and "OpenMol/ChemCoTBench@main" in message and "task.data_files=" in message
    with pytest.raises(TaskDataError, match="not a json, jsonl, parquet or csv"):
        load_rows("chemcot", "OpenMol/ChemCoTBench", data_files=str(tmp_path / "rows.txt"))


def test_an_unreachable_hub_ends_the_paper_command_in_one_message_naming_the_local_alternative(tmp_path):
    """`python -m llmzero task=chemcot model=qwen3_4b` with no route to the hub (here: an endpoint nobody listens on)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    out = subprocess.run([sys.executable, "-m", "llmzero", "task=chemcot", "model=qwen3_4b", "wandb.mode=disabled",
                          f"search.dir={tmp_path / 'run'}"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    message = out.stdout + out.stderr
    assert "OpenMol/ChemCoTBench" in message and "task.data_files=" in message and "HF_HUB_OFFLINE=1" in message
    assert "Traceback" not in message and "Retrying" not in message
    assert not (tmp_path / "run" / "tree.json").exists()

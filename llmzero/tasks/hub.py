"""Loading a benchmark's rows and cutting them into the search's splits (paper §4.1, Appendix B.1).

Rows come from `datasets.load_dataset`: the hub id at a pinned revision, or a local copy named by
`task.data_files` (a file, a glob or a folder of json/jsonl/parquet/csv) for mirrored or air-gapped clusters,
read through the same call. The paper trains on at most 5000 prompts and validates and tests on at most 500
each, drawn uniformly with a seed; `cut_splits` does that, and says what it did when a dataset is smaller.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..config.schema import ConfigError

__all__ = ["PAPER_CAPS", "Cut", "TaskDataError", "cut_splits", "hub_unreachable", "load_rows", "own_test_split"]

PAPER_CAPS = {"train": 5000, "val": 500, "test": 500}
_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


class TaskDataError(ConfigError):
    """A task's dataset cannot be read; the message names it and the local alternative."""


@dataclass(frozen=True)
class Cut:
    splits: dict[str, list[dict[str, Any]]]
    note: str  # one line for the user: how many rows, and how they were divided


def _builder_for(data_files: str) -> tuple[str, Any]:
    """`load_dataset`'s builder name and data_files argument for a local path (file, glob or folder)."""
    path = Path(data_files).expanduser()
    files = sorted(p for p in path.rglob("*") if p.suffix in _FORMATS) if path.is_dir() else [path]
    suffixes = {p.suffix for p in files}  # a glob's suffix is its pattern's: rows/*.jsonl -> .jsonl
    if len(suffixes) != 1 or not suffixes <= _FORMATS.keys():
        raise TaskDataError(f"task.data_files={data_files!r} is not a json, jsonl, parquet or csv file, glob or folder "
                            f"of one of them")
    return _FORMATS[suffixes.pop()], [str(p) for p in files] if path.is_dir() else str(path)


def hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the Hugging Face hub cannot be reached from here (None when it answers, with any HTTP status).

    Asked once before loading: unreachable, `load_dataset` would spend half a minute retrying before it says so.
    In offline mode (HF_HUB_OFFLINE=1) the datasets cache answers instead, so the hub is not asked."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{endpoint} cannot be reached ({reason})"
    return None


def _all_empty(data_files: str) -> bool:
    """Whether every file the data_files setting names is empty (or blank)."""
    try:
        _, files = _builder_for(data_files)
    except TaskDataError:
        return False
    paths = [Path(f) for f in (files if isinstance(files, list) else [files])]
    return bool(paths) and all(p.is_file() and not p.read_bytes().strip() for p in paths)


def load_rows(task: str, dataset: str, revision: str | None = None, data_files: str | None = None,
              config_name: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every split of the dataset as lists of plain rows: the local copy when `data_files` is set, else the hub."""
    import datasets

    if not data_files and (problem := hub_unreachable()) is not None:
        raise TaskDataError(
            f"task={task}: cannot load the dataset {dataset}" + (f"@{revision}" if revision else "") + f": {problem}. "
            f"Copy the dataset's files ({dataset}) to this machine and set task.data_files=<file, glob or folder of "
            f"json/jsonl/parquet/csv>, or set HF_HUB_OFFLINE=1 if it is already in the Hugging Face cache")
    try:
        if data_files:
            builder, files = _builder_for(data_files)
            loaded = datasets.load_dataset(builder, data_files=files)
        else:
            loaded = datasets.load_dataset(dataset, config_name, revision=revision)
    except TaskDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - the hub, the network and the files fail in many ways; all say the same
        where = f"task.data_files={data_files!r}" if data_files else f"{dataset}" + (f"@{revision}" if revision else "")
        if data_files and _all_empty(data_files):
            raise TaskDataError(f"task={task}: {where} holds no rows (its file(s) are empty): give the file(s) of the "
                                f"dataset, one json object per line (jsonl), or parquet/csv with a header") from None
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TaskDataError(
            f"task={task}: could not load the dataset {where}: {type(exc).__name__}"
            + (f": {detail}" if detail else "") + ". "
            f"Without network access to the Hugging Face hub, copy the dataset's files ({dataset}) to this machine "
            f"and set task.data_files=<file, glob or folder of json/jsonl/parquet/csv>") from exc
    return {name: [dict(row) for row in split] for name, split in loaded.items()}


def _shares(n: int, caps: dict[str, int]) -> dict[str, int]:
    """How many of n rows each split gets: its cap when there are enough, else the caps' proportions."""
    total = sum(caps.values())
    if n >= total:
        return dict(caps)
    held = {name: n * cap // total for name, cap in caps.items() if name != "train"}
    return {"train": n - sum(held.values()), **held}


def own_test_split(task: str, names: Sequence[str], named: str | None = None) -> str | None:
    """The name of the dataset's own test split, whatever it is called: `named` (task.test_split) when given, else
    the split called `test` in any case, else the one split whose name starts with it (SSMR-Bench's `Test_textual`);
    None when the dataset has none."""
    if named:
        if named not in names:
            raise TaskDataError(f"task.test_split={named!r} is not a split of task={task}'s data (its splits: "
                                f"{', '.join(sorted(names)) or 'none'})")
        return named
    exact = [n for n in names if n.lower() == "test"]
    if exact:
        return exact[0]
    prefixed = [n for n in names if n.lower().startswith("test")]
    if len(prefixed) > 1:
        raise TaskDataError(f"task={task}'s data has several test splits ({', '.join(sorted(prefixed))}): name the "
                            f"one to score on with task.test_split=<name>")
    return prefixed[0] if prefixed else None


def cut_splits(task: str, by_split: dict[str, Sequence[dict[str, Any]]], seed: int,
               caps: dict[str, int] | None = None, test_split: str | None = None) -> Cut:
    """train/val/test drawn uniformly with `seed`. A dataset's own test split (own_test_split) stays the test split
    (val is then cut from the rest); otherwise all rows are pooled. Each split gets its cap, or, when the rows are
    fewer than the caps together, the caps' proportions."""
    caps = dict(caps or PAPER_CAPS)
    rng = random.Random(f"{task}-{seed}")
    test_name = own_test_split(task, list(by_split), test_split)
    own_test = by_split.get(test_name) if test_name else None
    pool = [row for name, rows in sorted(by_split.items()) if not (own_test and name == test_name) for row in rows]
    if own_test:
        test = list(own_test)
        rng.shuffle(test)
        rest = {"train": caps["train"], "val": caps["val"]}
        shares = {**_shares(len(pool), rest), "test": min(caps["test"], len(test))}
        rng.shuffle(pool)
        out = {"train": pool[:shares["train"]], "val": pool[shares["train"]:shares["train"] + shares["val"]],
               "test": test[:shares["test"]]}
        how = f"its own test split {test_name!r} kept ({len(own_test)} rows), val cut from the other {len(pool)}"
    else:
        shares = _shares(len(pool), caps)
        rng.shuffle(pool)
        out, start = {}, 0
        for name in ("test", "val", "train"):  # held-out splits first, as the arithmetic task does
            out[name] = pool[start:start + shares[name]]
            start += shares[name]
        how = f"{len(pool)} rows pooled"
    scaled = any(len(out[name]) < cap for name, cap in caps.items())
    note = (f"task={task}: {how}; train {len(out['train'])}, val {len(out['val'])}, test {len(out['test'])}"
            + (f" (fewer rows than the paper's {caps['train']}/{caps['val']}/{caps['test']}: split in its proportions)"
               if scaled else f" (the paper's caps, drawn with seed {seed})"))
    return Cut(splits=out, note=note)

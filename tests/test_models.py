"""llmzero.models: the offline tokenizer, builtin:tiny (build, warm start, cache), path resolution, greedy decoding."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

from llmzero.models import tiny
from llmzero.models.loading import greedy_complete, load_model_and_tokenizer
from llmzero.models.resolve import resolve_model_path
from llmzero.models.warm_start import balance_subtasks
from llmzero.models.tokenizer import EOS_TOKEN, build_tokenizer
from llmzero.tasks.arithmetic import ArithmeticTask
from llmzero.tasks.base import build_task

ROOT = Path(__file__).resolve().parents[1]
NO_SFT = {"sft_steps": 0}


def _conf(group: str, name: str) -> dict:
    cfg = yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())
    cfg.pop("defaults", None)
    return cfg


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("llmzero-cache")


@pytest.fixture(autouse=True)
def _cache_env(cache_dir, monkeypatch):
    monkeypatch.setenv("LLMZERO_CACHE", str(cache_dir))


@pytest.fixture(scope="module")
def task():
    return build_task(_conf("task", "arithmetic"))


@pytest.fixture(scope="module")
def warm(default_tiny_cache):
    """The real default builtin:tiny (conf/model/tiny.yaml's build options), built once for the session."""
    path = Path(default_tiny_cache["path"])
    model, tok = load_model_and_tokenizer(str(path))
    return {"path": path, "model": model, "tok": tok, "info": tiny.read_build_info(path)}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _count_builds(monkeypatch) -> list:
    calls = []
    real = tiny.build_tiny_model

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny, "build_tiny_model", counting)
    return calls


# ------------------------------------------------------------------------------------------ tokenizer


def test_tokenizer_round_trips_characters_and_ends_with_eos():
    tok = build_tokenizer()
    ids = tok("42+34=76")["input_ids"]
    assert len(ids) == 8  # one token per character, no bos
    assert tok.decode(ids) == "42+34=76"
    text = "Hello, World! 7*8=56\n(a/b) - c?"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.eos_token == EOS_TOKEN and tok.pad_token == EOS_TOKEN and tok.bos_token is None
    assert tok.convert_tokens_to_ids(EOS_TOKEN) == tok.eos_token_id == tok.pad_token_id
    assert tok.decode(tok("12")["input_ids"] + [tok.eos_token_id], skip_special_tokens=True) == "12"
    assert tok.padding_side == "left"
    batch = tok(["1+1=", "123+456="], padding=True)
    assert batch["input_ids"][0][:4] == [tok.pad_token_id] * 4 and batch["attention_mask"][0][:4] == [0] * 4


# ------------------------------------------------------------------------------------------ building


def test_build_without_warm_start_saves_a_loadable_qwen3(tmp_path, task):
    out = tiny.build_tiny_model(tmp_path / "m", task, sft_steps=0, hidden_size=32, heads=4, kv_heads=2,
                                progress=False)
    model, tok = load_model_and_tokenizer(str(out))
    assert type(model).__name__ == "Qwen3ForCausalLM" and model.config.model_type == "qwen3"
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == tiny.DEFAULT_OPTIONS["layers"]
    assert model.config.num_attention_heads == 4 and model.config.num_key_value_heads == 2
    assert model.config.vocab_size == len(tok) == len(build_tokenizer())
    assert model.config.eos_token_id == tok.eos_token_id == tok.pad_token_id
    assert tok.padding_side == "left" and tok.decode(tok("42+34=76")["input_ids"]) == "42+34=76"
    info = tiny.read_build_info(out)
    assert info["sft"]["steps"] == 0 and info["options"]["hidden_size"] == 32


def test_warm_start_trains_deterministically(tmp_path):
    small = ArithmeticTask(train_size=96, val_size=12, test_size=12)
    opts = {"sft_steps": 6, "sft_pool_size": 0, "sft_target": 0, "sft_batch_size": 16, "hidden_size": 32,
            "progress": False}
    a = tiny.build_tiny_model(tmp_path / "a", small, **opts)
    b = tiny.build_tiny_model(tmp_path / "b", small, **opts)
    base = tiny.build_tiny_model(tmp_path / "base", small, **{**opts, "sft_steps": 0})
    assert tiny.read_build_info(a)["sft"]["steps"] == 6
    sa, sb, s0 = (load_model_and_tokenizer(str(p))[0].state_dict() for p in (a, b, base))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # same seed, same model
    assert any(not torch.equal(sa[k], s0[k]) for k in sa)  # the warm start moved the weights


def test_warm_start_pool_grows_with_other_seeds_and_excludes_held_out(task):
    splits = task.splits()
    pool = tiny.sft_examples(task, 3000)
    assert len(pool) == 3000 and pool[:len(splits["train"])] == splits["train"]
    assert len({ex.prompt for ex in pool}) == 3000
    held = {ex.prompt for k in ("val", "test") for ex in splits[k]}
    assert not held & {ex.prompt for ex in pool}
    assert all(ex.answer == str(eval(ex.prompt[:-1])) for ex in pool[-50:])
    assert tiny.sft_examples(task, 0) == splits["train"]

    train, probe = tiny.split_probe(pool)
    assert len(train) + len(probe) == 3000 and not {e.prompt for e in train} & {e.prompt for e in probe}
    counts = {s: sum(e.subtask == s for e in probe) for s in task.subtasks}
    in_pool = {s: sum(e.subtask == s for e in pool) for s in task.subtasks}
    # PROBE_PER_SUBTASK each, but never more than a tenth of a subtask's examples (mul_1x2digit is scarce)
    assert counts == {s: min(tiny.PROBE_PER_SUBTASK, in_pool[s] // 10) for s in task.subtasks}
    assert counts["add_2digit"] == tiny.PROBE_PER_SUBTASK

    balanced = balance_subtasks(train)
    most = max(sum(e.subtask == s for e in train) for s in task.subtasks)
    assert [sum(e.subtask == s for e in balanced) for s in task.subtasks] == [most] * len(task.subtasks)
    assert {e.prompt for e in balanced} == {e.prompt for e in train}  # repeats, nothing new (no probe prompt)
    n = len(task.subtasks)  # interleaved: any prefix is balanced too
    assert all({e.subtask for e in balanced[i:i + n]} == set(task.subtasks) for i in range(0, 30 * n, n))


# ------------------------------------------------------------------------------------------ cache


def test_cache_builds_once_and_reuses(cache_dir, task, monkeypatch):
    calls = _count_builds(monkeypatch)
    results = []
    threads = [threading.Thread(target=lambda: results.append(tiny.ensure_tiny_model(task, NO_SFT, progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results[0] == results[1]  # the racer waited on the lock, then reused the build
    path = results[0]
    assert path.parent == cache_dir / "models" and path.name == f"tiny-{tiny.cache_key(task, NO_SFT)}"
    mtime = (path / "build.json").stat().st_mtime_ns
    assert tiny.ensure_tiny_model(task, NO_SFT, progress=False) == path
    assert len(calls) == 1 and (path / "build.json").stat().st_mtime_ns == mtime
    info = tiny.read_build_info(path)
    assert info["options"] == tiny.resolve_options(NO_SFT) and info["build_seconds"] > 0
    assert info["val"]["score"] == 0.0 and set(info["val"]) == {"score", *task.subtasks}
    assert not list((cache_dir / "models").glob(".tmp-*"))
    assert path.stat().st_mode & 0o055 == 0o055 & ~_umask()  # as readable as any new directory


def test_cache_key_follows_options_task_and_version(task, monkeypatch):
    key = tiny.cache_key(task, NO_SFT)
    assert len(key) == 12 and key == tiny.cache_key(task, {"sft_steps": 0})
    assert tiny.cache_key(task, {}) == tiny.cache_key(task, tiny.DEFAULT_OPTIONS)
    others = {
        tiny.cache_key(task, {"sft_steps": 0, "hidden_size": 32}),
        tiny.cache_key(task, {"sft_steps": 0, "seed": 1}),
        tiny.cache_key(ArithmeticTask(seed=1), NO_SFT),
        tiny.cache_key(ArithmeticTask(train_size=100), NO_SFT),
        tiny.cache_key(ArithmeticTask(subtasks=["add_2digit"]), NO_SFT),
    }
    assert len(others) == 5 and key not in others
    monkeypatch.setattr(tiny, "BUILDER_VERSION", tiny.BUILDER_VERSION + 1)
    assert tiny.cache_key(task, NO_SFT) != key
    with pytest.raises(ValueError, match="hidden"):
        tiny.resolve_options({"hiden_size": 32})


def test_different_options_build_a_different_model_and_stale_temporaries_are_cleared(cache_dir, task, monkeypatch):
    opts = {"sft_steps": 0, "hidden_size": 32}
    key = tiny.cache_key(task, opts)
    stale = cache_dir / "models" / f".tmp-tiny-{key}-killed"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")  # a half-written build from a killed process
    calls = _count_builds(monkeypatch)
    path = tiny.ensure_tiny_model(task, opts, progress=False)
    assert len(calls) == 1 and path.name == f"tiny-{key}" != f"tiny-{tiny.cache_key(task, NO_SFT)}"
    assert not stale.exists()
    assert load_model_and_tokenizer(str(path))[0].config.hidden_size == 32


def test_cache_root_defaults(monkeypatch, tmp_path):
    assert tiny.cache_root() == Path(os.environ["LLMZERO_CACHE"])
    monkeypatch.delenv("LLMZERO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tiny.cache_root() == tmp_path / "xdg" / "llmzero"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tiny.cache_root() == tmp_path / "home" / ".cache" / "llmzero"


# ------------------------------------------------------------------------------------------ resolving


def test_resolve_model_path(cache_dir, task, tmp_path):
    built = resolve_model_path({"path": "builtin:tiny", "build": NO_SFT}, task)
    assert built == str(tiny.ensure_tiny_model(task, NO_SFT)) and Path(built).parent == cache_dir / "models"
    saved = tiny.build_tiny_model(tmp_path / "saved", task, sft_steps=0, progress=False)
    assert resolve_model_path({"path": str(saved)}, task) == str(saved)
    assert resolve_model_path({"path": "Qwen/Qwen3-4B"}, task) == "Qwen/Qwen3-4B"
    assert resolve_model_path({"path": "Qwen/Qwen3-0.6B"}) == "Qwen/Qwen3-0.6B"
    with pytest.raises(ValueError, match="builtin:tiny"):
        resolve_model_path({"path": "builtin:huge"}, task)


def test_tiny_yaml_builds_with_the_builder_defaults():
    # written once, in tiny.DEFAULT_OPTIONS: the preset overrides none of them
    assert not _conf("model", "tiny").get("build")
    assert tiny.resolve_options(_conf("model", "tiny").get("build")) == tiny.DEFAULT_OPTIONS


# ------------------------------------------------------------------------------------------ warm start


def test_greedy_complete_returns_continuations_consistently(warm):
    model, tok = warm["model"], warm["tok"]
    prompts = ["42+34=", "569+101=", "6*37=", "11+11=", "999+999=", "3*33="]
    out = greedy_complete(model, tok, prompts, 8)
    assert len(out) == len(prompts) and all(o and o[0].isdigit() for o in out)
    assert not any(o.startswith(p) or EOS_TOKEN in o for o, p in zip(out, prompts))
    assert greedy_complete(model, tok, prompts, 8) == out  # deterministic
    assert greedy_complete(model, tok, prompts, 8, batch_size=1) == out  # left padding changes nothing
    assert greedy_complete(model, tok, prompts[::-1], 8, batch_size=4) == out[::-1]
    assert greedy_complete(model, tok, [], 8) == []
    # the same continuation as a hand-written argmax loop on the unpadded prompt, cut at eos
    ids = tok(prompts[1], return_tensors="pt")["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(8):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    assert out[1] == tok.decode(new)

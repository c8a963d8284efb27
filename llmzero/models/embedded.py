"""The embedded default model, shipped in the package: `builtin:tiny` for the default arithmetic task.

A model this small, warm-started at a high learning rate, is chaotic in the host's float kernels: the same
build gave base val 0.23 on one CPU and 0.05 on another. So the default is built once, by
`python -m llmzero.models.embedded --rebuild`, and its files ship in `shipped/tiny-arithmetic/`: every machine
starts from byte-identical weights and builds nothing. `build.json` beside them records the builder options,
the task it was warm-started on, the host it ran on, its base scores and the SHA-256 of every file, checked
whenever the model is used. Other builder options or another task still go through tiny.py's cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ..paths import conf_dir
from ..tasks.base import build_task
from . import tiny
from .loading import load_model_and_tokenizer
from .tiny import BUILDER_VERSION, build_tiny_model, evaluate_greedy, make_readable, read_build_info, task_fingerprint
from .warm_start import EVAL_MAX_NEW_TOKENS, quiet_hf_logs

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped" / "tiny-arithmetic"
INFO_FILE = "build.json"
REBUILD_COMMAND = "python -m llmzero.models.embedded --rebuild"
# Greedy decoding only changes where the top two logits of a step are closer than the host's rounding can move
# them; float32 kernels that sum in another order move a logit of this model by ~1e-5, so a gap under this is the
# only place another host may decode differently (build.json counts those prompts per split).
FRAGILE_GAP = 1e-3


class DamagedModelError(ValueError):
    """A shipped model file is missing or does not match its recorded checksum."""


def shipped_info(path: Path | None = None) -> dict[str, Any] | None:
    """The shipped model's build record, or None when the package carries no shipped model at all."""
    folder = path or SHIPPED_DIR
    info = folder / INFO_FILE
    if not folder.is_dir():
        return None
    try:
        record = json.loads(info.read_text())
    except (OSError, ValueError) as exc:
        raise DamagedModelError(f"the shipped model's record {info} cannot be read ({exc}); reinstall llmzero "
                                f"(pip install --force-reinstall llmzero) or run {REBUILD_COMMAND}") from None
    if not isinstance(record, dict):
        raise DamagedModelError(f"the shipped model's record {info} is not a JSON object; reinstall llmzero "
                                f"(pip install --force-reinstall llmzero) or run {REBUILD_COMMAND}")
    return record


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path | None = None, info: dict[str, Any] | None = None) -> None:
    """Raise DamagedModelError naming the first file that is missing or whose SHA-256 differs from build.json's."""
    path = path or SHIPPED_DIR
    info = info if info is not None else shipped_info(path)
    sums = (info or {}).get("sha256") or {}
    if not sums:
        raise DamagedModelError(f"{path / INFO_FILE} lists no checksums: the shipped model cannot be checked; "
                                f"reinstall llmzero or run {REBUILD_COMMAND}")
    for name, expected in sorted(sums.items()):
        file = path / name
        if not file.is_file():
            raise DamagedModelError(f"the shipped model file {file} is missing; reinstall llmzero "
                                    f"(pip install --force-reinstall llmzero) or run {REBUILD_COMMAND}")
        found = sha256_of(file)
        if found != expected:
            raise DamagedModelError(f"the shipped model file {file} is damaged (sha256 {found[:12]}…, expected "
                                    f"{expected[:12]}…); reinstall llmzero (pip install --force-reinstall llmzero) "
                                    f"or run {REBUILD_COMMAND}")


def shipped_for(task: Any, options: dict[str, Any], path: Path | None = None) -> Path | None:
    """The shipped model when it is the one `task` and the resolved builder `options` ask for (checked), else None."""
    path = path or SHIPPED_DIR
    if not uses_shipped(options, path):
        return None
    info = shipped_info(path) or {}
    if info.get("task") != json.loads(json.dumps(task_fingerprint(task), default=str)):
        return None
    verify(path, info)
    return path


def uses_shipped(options: dict[str, Any], path: Path | None = None) -> bool:
    """Whether these resolved builder options (and this builder) made the shipped model."""
    info = shipped_info(path)
    return info is not None and info.get("options") == options and info.get("builder_version") == BUILDER_VERSION


# ------------------------------------------------------------------------------------------------ rebuild


def host_record() -> dict[str, Any]:
    """What the build ran on: the float kernels (CPU, torch and its math libraries) decide the weights."""
    import torch
    import transformers
    import trl

    cpu, flags = platform.processor() or "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = sorted(f for f in value.split() if f.startswith(("avx", "fma", "amx")))
            if cpu and flags:
                break
    except OSError:  # not Linux: platform.processor() is all there is
        pass
    return {"cpu": cpu, "cpu_flags": flags, "machine": platform.machine(), "system": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "trl": trl.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def greedy_gaps(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[float]:
    """Per prompt, the smallest gap between the top two logits over the steps of its greedy answer."""
    import torch

    gaps: list[float] = []
    model.eval()
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, output_scores=True, return_dict_in_generate=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            smallest = float("inf")
            for step_scores in out.scores:
                top = torch.topk(step_scores[0].float(), 2).values
                smallest = min(smallest, float(top[0] - top[1]))
            gaps.append(smallest)
    return gaps


def rebuild(out: Path, progress: bool = True) -> dict[str, Any]:
    """Build the default builtin:tiny for the default task into `out` and record how (build.json)."""
    task_cfg = yaml.safe_load((conf_dir() / "task" / "arithmetic.yaml").read_text())
    task_cfg.pop("defaults", None)
    task_cfg.pop("hparams", None)
    task = build_task(task_cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".rebuild-", dir=out.parent))
    try:
        build_tiny_model(tmp, task, progress=progress, **tiny.DEFAULT_OPTIONS)
        info = read_build_info(tmp)
        info.update({"task": json.loads(json.dumps(task_fingerprint(task), default=str)), "host": host_record(),
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": REBUILD_COMMAND})
        with quiet_hf_logs():
            model, tok = load_model_and_tokenizer(str(tmp))
            info["scores"] = {split: evaluate_greedy(model, task, split, tok)
                              for split in ("val", "test")}
            info["fragile_prompts"] = {}
            info["smallest_gap"] = {}
            for split in ("val", "test"):
                gaps = greedy_gaps(model, tok, [ex.prompt for ex in task.splits()[split]], EVAL_MAX_NEW_TOKENS)
                info["fragile_prompts"][split] = sum(g < FRAGILE_GAP for g in gaps)
                info["smallest_gap"][split] = round(min(gaps), 6)
        info["fragile_gap"] = FRAGILE_GAP
        info["sha256"] = {f.name: sha256_of(f) for f in sorted(tmp.iterdir()) if f.is_file() and f.name != INFO_FILE}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        make_readable(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmzero.models.embedded",
                                     description="The embedded default model shipped in the package.")
    parser.add_argument("--rebuild", action="store_true",
                        help="build it again with tiny.DEFAULT_OPTIONS on conf/task/arithmetic.yaml (a few minutes)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where the rebuilt files go (default: the package's own, {SHIPPED_DIR})")
    parser.add_argument("--check", action="store_true", help="check the shipped files against their checksums")
    args = parser.parse_args(argv)
    args.out = args.out or SHIPPED_DIR
    if args.rebuild:
        info = rebuild(args.out)
        print(json.dumps({k: info[k] for k in ("scores", "fragile_prompts", "smallest_gap", "host", "sha256")},
                         indent=2))
        return 0
    try:
        verify(args.out)
    except DamagedModelError as exc:
        print(exc, file=sys.stderr)
        return 1
    info = shipped_info(args.out) or {}
    print(f"{args.out}: intact; base val {info['scores']['val']['score']:.3f}, "
          f"test {info['scores']['test']['score']:.3f}; built on {info['host']['cpu']} ({info['created']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

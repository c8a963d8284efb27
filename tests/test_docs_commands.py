"""Every `python -m llmzero ...` line in the README and the docs composes: each is run through the real command
line (our preflight, then Hydra) with `--cfg job`, which composes the config and prints it without running."""

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "benchmarks" / "README.md"]
# What a reader types in place of a placeholder
PLACEHOLDERS = {"<head>": "head", "<other task>": "chemcot"}
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
COMMAND = re.compile(r"(?:^|\s|/)python -m llmzero(?=\s|$)(.*)")


def single_run(args: list[str]) -> list[str]:
    """A multirun line as the one run `--cfg job` composes: without -m, each sweep at its first value (a sweeper's
    interval, which has none, left out), parsed by Hydra's own override grammar."""
    if not {"-m", "--multirun"} & set(args):
        return args
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for arg in (a for a in args if a not in ("-m", "--multirun")):
        override = OverridesParser.create().parse_override(arg)
        if not override.is_sweep_override():
            out.append(arg)
            continue
        first = next(iter(override.sweep_iterator()), None) if not override.is_interval_sweep() else None
        if first is not None:
            out.append(f"{override.get_key_element()}={first}")
    return out


def doc_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in FENCE.findall(doc.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                m = COMMAND.search(line)
                if not m:
                    continue
                rest = re.split(r"\s#\s|\s#$|\s+&\s*$|&&", m.group(1))[0]
                for key, value in PLACEHOLDERS.items():
                    rest = rest.replace(key, value)
                found.append((f"{doc.relative_to(ROOT)}: python -m llmzero{rest.rstrip()}",
                              single_run(shlex.split(rest))))
    return found


COMMANDS = doc_commands()


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) >= 30 and all("<" not in " ".join(args) for _, args in COMMANDS)


@pytest.mark.parametrize("where, args", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_composes(where, args, monkeypatch, tmp_path):
    from llmzero.__main__ import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "exp1").mkdir(parents=True)
    (tmp_path / "runs" / "exp1" / "recipe.yaml").write_text((ROOT / "recipes" / "practitioner.yaml").read_text())
    monkeypatch.setattr(sys, "argv", ["llmzero", *args, "--cfg", "job"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    assert code == 0, f"{where}\n{err.getvalue()[-2000:]}"
    assert "search:" in out.getvalue() and "task:" in out.getvalue(), where

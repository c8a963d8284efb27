"""`python -m llmzero.report <search_dir> [--out PATH] [--markdown PATH]`: write a search's report.

Draws the search plots (best score so far, compute, strategy, tree) under <search_dir>/plots/, then
writes a self-contained HTML page (interactive tree, node details, plots, tables) and a Markdown
summary, by default as report.html and report.md inside the search directory. Works on a finished
search and on one still running (it reads the directory and writes only plots and the reports).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hparams.space import HParamSpace
    from .state.rundir import RunDir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmzero.report",
                                description="Write an HTML and a Markdown report of an llmzero search directory.")
    p.add_argument("search_dir", type=Path, help="search directory (the one holding tree.json)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="HTML report to write (default: <search_dir>/report.html)")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="Markdown report to write (default: <search_dir>/report.md)")
    return p


def _saved_space(rundir: "RunDir") -> "HParamSpace":
    """The search's hyperparameter space from its config.yaml (empty when it cannot be read)."""
    from omegaconf import OmegaConf

    from .hparams.space import HParamSpace

    try:
        raw = OmegaConf.to_container(OmegaConf.load(rundir.config_file).search.space, resolve=True)
        return HParamSpace.from_config(raw or {})
    except Exception:  # noqa: BLE001 - a damaged config costs the strategy plot its roles, not the report
        return HParamSpace({})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tree_file = args.search_dir / "tree.json"
    if not tree_file.is_file():
        parser.exit(2, f"{parser.prog}: error: no search journal at {tree_file} — is {args.search_dir} "
                       f"an llmzero search directory?\n")
    from .reports.html import write_report
    from .reports.search_plots import render_search_plots
    from .state.rundir import RunDir
    from .tree.journal import JournalError

    rundir = RunDir(args.search_dir)
    try:
        tree, _ = rundir.load_tree(whole=False)
    except JournalError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        render_search_plots(tree, rundir.root, _saved_space(rundir))
        html_path, md_path = write_report(args.search_dir, args.out, args.markdown)
    except OSError as exc:  # a read-only or full disk: say where, and how to get a report anyway
        where = exc.filename or args.search_dir
        parser.exit(4, f"{parser.prog}: error: cannot write {where} ({exc.strerror or exc}): the report's plots go "
                       f"in <search_dir>/plots; copy the search directory somewhere writable (cp -r "
                       f"{args.search_dir} /tmp/) and run {parser.prog} on the copy\n")
    print(f"html:     {html_path}")
    print(f"markdown: {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

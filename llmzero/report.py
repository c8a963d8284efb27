"""`python -m llmzero.report <search_dir> [--out PATH] [--markdown PATH]`: write a search's report.

Writes a self-contained HTML page (interactive tree, node details, plots, tables) and a Markdown
summary, by default as report.html and report.md inside the search directory. Works on a finished
search and on one still running (it only reads the directory).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmzero.report",
                                description="Write an HTML and a Markdown report of an llmzero search directory.")
    p.add_argument("search_dir", type=Path, help="search directory (the one holding tree.json)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="HTML report to write (default: <search_dir>/report.html)")
    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="Markdown report to write (default: <search_dir>/report.md)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tree_file = args.search_dir / "tree.json"
    if not tree_file.is_file():
        parser.exit(2, f"{parser.prog}: error: no search journal at {tree_file} — is {args.search_dir} "
                       f"an llmzero search directory?\n")
    from .reports.html import write_report

    html_path, md_path = write_report(args.search_dir, args.out, args.markdown)
    print(f"html:     {html_path}")
    print(f"markdown: {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the shipped data folders (conf/, prompts/, recipes/) are.

In a repository checkout (editable install) they sit beside the package; a wheel carries
them inside the package as llmzero/_data/, so an installed llmzero runs from any directory.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name


def conf_dir() -> Path:
    return data_dir("conf")

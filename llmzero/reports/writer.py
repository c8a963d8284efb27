"""The search-level plots (paper Figs 2, 3, 5 and the tree) and the HTML/Markdown report, written when a
search ends; a search observer, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..hparams.space import HParamSpace
from ..search.observer import SearchObserver, SearchView
from ..state.rundir import RunDir
from ..tree import Tree

log = logging.getLogger(__name__)


def write_search_artifacts(tree: Tree, search_dir: Path, space: HParamSpace | None) -> dict[str, Path]:
    """plots/*.png and report.html / report.md under search_dir; what could not be drawn is logged and skipped."""
    out: dict[str, Path] = {}
    try:
        from .search_plots import render_search_plots

        out.update(render_search_plots(tree, search_dir, space))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not draw the search plots: %s", exc)
    try:
        from .html import write_report

        out["report.html"], out["report.md"] = write_report(search_dir)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write the report: %s", exc)
        RunDir(Path(search_dir)).log_event("report_failed", error=str(exc))
    return out


class ReportWriter(SearchObserver):
    def __init__(self, space: HParamSpace | None = None) -> None:
        self.space = space
        self.artifacts: dict[str, Path] = {}

    def on_search_end(self, view: SearchView, result: Any) -> None:
        self.artifacts = write_search_artifacts(view.tree, view.search_dir, self.space)

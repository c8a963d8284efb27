"""Search state as compact prompt text: configurations, metric summaries, paths, siblings.

Agents never get raw metric dumps (§3.4): every curve becomes one summary line, and nodes
become one line each, so the prompt stays small however long the phases ran.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import yaml

from ...hparams.space import HParamSpace
from ...metrics import names
from ...metrics.store import MetricSeries
from ...metrics.summary import summaries_text as join_summaries, summarise
from ...tree import Node

# The order an ML engineer reads a GRPO run in: outcome first, then learning signal, then stability.
_ORDER = (names.VAL_SCORE, names.REWARD_MEAN, names.REWARD_STD, names.ZERO_STD_FRAC, names.KL, names.ENTROPY,
          names.CLIP_RATIO, names.GRAD_NORM, names.RESPONSE_LENGTH, names.RESPONSE_CLIP_RATIO, names.LR)
_SKIP = {names.STEP, names.GLOBAL_STEP, names.STEP_TIME, "time", "epoch"}


def fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def config_yaml(hparams: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(sorted(hparams.items())), default_flow_style=False, sort_keys=False).strip()


def space_text(space: HParamSpace) -> str:
    lines = []
    for key, spec in space.specs.items():
        # A parameter's role (capacity, regularisation) stays out of the prompt: §4.3.2 reports how the two
        # kinds moved as a finding, and Appendix G's prompts hard-code no strategy that would presuppose it.
        notes = []
        if spec.fixed_along_path:
            notes.append("fixed along a path")
        if spec.inert:
            notes.append(f"no effect here, do not change: {spec.inert}")
        extra = f" [{', '.join(notes)}]" if notes else ""
        lines.append(f"- {key}: {spec.allowed()}; default {fmt(spec.default)}{extra}")
    return "\n".join(lines)


def fix_start_text(resume_step: int | None, max_steps: int) -> str:
    """Where a fix of a failed phase starts, so its length (max_steps) can count from there."""
    if resume_step is None:
        return "It saved no checkpoint: the fix restarts from where this phase started."
    return (f"The fix resumes this phase's adapter from its last complete checkpoint, step {resume_step}; by default "
            f"it runs the {max(1, max_steps - resume_step)} steps this phase had left.")


def metric_descriptions_text(descriptions: Mapping[str, str]) -> str:
    return "\n".join(f"- {k}: {' '.join(str(v).split())}" for k, v in descriptions.items())


def hparam_descriptions_text(groups: Mapping[str, Mapping[str, str]], space: HParamSpace) -> str:
    """Grouped by function as in Appendix F; parameters of this search with no description are listed too."""
    seen: set[str] = set()
    out = []
    for group, entries in groups.items():
        out.append(f"{group}:")
        for key, text in entries.items():
            seen.add(key)
            out.append(f"- {key}: {' '.join(str(text).split())}")
    rest = [k for k in space.specs if k not in seen]
    if rest:
        out.append("other (from the search space):")
        out += [f"- {k}: {' '.join(space.specs[k].description.split()) or '(no description)'}" for k in rest]
    return "\n".join(out)


def summaries_text(series: MetricSeries, limit: int = 24) -> str:
    # Test scores never reach an agent: selection must see validation only (paper §4.1, strict separation).
    keys = [k for k in _ORDER if k in series.keys()]
    keys += sorted(k for k in series.keys() if k not in keys and k not in _SKIP and not k.startswith("test/"))
    text = join_summaries(summarise(series, keys[:limit])) or "(no metrics were logged)"
    if series.damaged_lines:
        text += (f"\n(the metrics file had {len(series.damaged_lines)} damaged line(s), skipped; the records around "
                 f"them are all here)")
    return text


def outcome(node: Node) -> str:
    text = (f"ran {node.steps_done} of {node.max_steps} steps; best val/score {fmt(node.best_val)} "
            f"at step {fmt(node.best_step)}")
    if node.stop_reason:
        text += f"; early-stopped: {node.stop_reason[:200]}"
    if node.error:
        text += f"; failed: {node.error.splitlines()[0][:200] if node.error.strip() else node.error}"
    return text


def node_line(node: Node) -> str:
    start = (f"resumed from node {node.resume_from} step {node.resume_step}" if node.resume_from is not None
             else "from scratch")
    changes = ", ".join(f"{k}={fmt(v)}" for k, v in node.changes.items()) or "none"
    line = f"- node {node.id} ({node.kind}, {node.status}), {start}; changes: {changes}; {outcome(node)}"
    if node.diagnosis and node.kind != "root":
        line += f"\n  its diagnosis: {' '.join(node.diagnosis.split())[:300]}"
    return line


def nodes_text(nodes: Iterable[Node], empty: str) -> str:
    lines = [node_line(n) for n in nodes]
    return "\n".join(lines) if lines else empty

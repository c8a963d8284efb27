"""metrics.jsonl: one JSON object per line, appended and flushed by the phase, tailed by the search."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import names


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line, flushed so the search (same host) tails it at once.

    No fsync per step (it cost up to 8% of a small step, benchmarks/bench_trl_phase.py): a killed
    process loses nothing the kernel already holds, a torn last line is skipped by readers, and a
    resumed phase cuts its records back to its last checkpoint, which is synced
    (mark_checkpoint_complete).
    """
    line = json.dumps(record, allow_nan=True, separators=(",", ":"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def read_records(path: Path, damaged: list[int] | None = None) -> list[dict[str, Any]]:
    """Every record of the file. A line that is not a JSON object (a torn last line from a killed writer, or a line
    damaged in the middle) is skipped and the lines after it are kept; the numbers of damaged lines in the middle go
    in `damaged`, so the caller can say that the history has a hole rather than lose its end without a word."""
    if not Path(path).exists():
        return []
    out, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            out.append(record)
        elif number < len(lines) - (0 if lines[-1] else 1):  # not the last line: damage, not a torn write
            bad.append(number)
    if damaged is not None:
        damaged.extend(bad)
    return out


@dataclass
class MetricsTail:
    """Incremental reader: returns only complete lines written since the last call."""

    path: Path
    _offset: int = 0
    _buffer: str = ""

    def poll(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
            self._offset = fh.tell()
        data = self._buffer + chunk
        lines = data.split("\n")
        self._buffer = lines.pop()  # incomplete trailing line, if any
        out = []
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out


@dataclass
class MetricSeries:
    """All records of one phase, indexed by metric name as (step, value) pairs."""

    records: list[dict[str, Any]] = field(default_factory=list)
    damaged_lines: list[int] = field(default_factory=list)  # lines of the file skipped as not JSON (read_records)

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        self.records.extend(records)

    def series(self, key: str, *, step_key: str = names.STEP) -> list[tuple[int, float]]:
        out = []
        for r in self.records:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and step_key in r:
                out.append((int(r[step_key]), float(v)))
        return out

    def values(self, key: str) -> list[float]:
        return [v for _, v in self.series(key)]

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            for k in r:
                seen.setdefault(k, None)
        return [k for k in seen if k not in (names.STEP, names.GLOBAL_STEP)]

    def last_step(self) -> int:
        steps = [int(r[names.STEP]) for r in self.records if names.STEP in r]
        return max(steps) if steps else 0

    def best_val(self) -> tuple[float | None, int | None]:
        """Best validation score and its step (earliest step on ties): on the whole val split (val_full/score)
        where the phase scored a slice in flight, else val/score."""
        best: tuple[float | None, int | None] = (None, None)
        full = self.series(names.VAL_FULL_SCORE)
        for step, v in full or self.series(names.VAL_SCORE):
            if math.isnan(v):
                continue
            if best[0] is None or v > best[0]:
                best = (v, step)
        return best

    def val_subscores(self, step: int | None) -> dict[str, float]:
        """The per-subtask validation scores recorded at `step` (val_full/<subtask> where the whole split was
        scored there, else val/<subtask>; the overall score left out)."""
        out: dict[str, float] = {}
        for r in self.records:
            if step is not None and r.get(names.STEP) == step:
                prefix, overall = ((names.VAL_FULL_PREFIX, names.VAL_FULL_SCORE) if names.VAL_FULL_SCORE in r
                                   else (names.VAL_PREFIX, names.VAL_SCORE))
                out.update({k[len(prefix):]: float(v) for k, v in r.items() if k.startswith(prefix) and k != overall})
        return out

    def at_step(self, key: str, step: int) -> float | None:
        for s, v in self.series(key):
            if s == step:
                return v
        return None

    @classmethod
    def load(cls, path: Path) -> "MetricSeries":
        damaged: list[int] = []
        return cls(read_records(path, damaged), damaged)

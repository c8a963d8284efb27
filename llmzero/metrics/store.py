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


def read_records(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed writer
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
        """Best validation score and its step (earliest step on ties)."""
        best: tuple[float | None, int | None] = (None, None)
        for step, v in self.series(names.VAL_SCORE):
            if math.isnan(v):
                continue
            if best[0] is None or v > best[0]:
                best = (v, step)
        return best

    def val_subscores(self, step: int | None) -> dict[str, float]:
        """The per-subtask validation scores recorded at `step` (val/<subtask>, val/score itself left out)."""
        out: dict[str, float] = {}
        for r in self.records:
            if step is not None and r.get(names.STEP) == step:
                out.update({k[len(names.VAL_PREFIX):]: float(v) for k, v in r.items()
                            if k.startswith(names.VAL_PREFIX) and k != names.VAL_SCORE})
        return out

    def at_step(self, key: str, step: int) -> float | None:
        for s, v in self.series(key):
            if s == step:
                return v
        return None

    @classmethod
    def load(cls, path: Path) -> "MetricSeries":
        return cls(read_records(path))

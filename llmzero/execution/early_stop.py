"""When to consult the early stopper about a running phase (§3.5).

The paper checks every 900 s; on short phases a step interval is more useful, so either
(or both) can be set. A minimum number of validation points guards against stopping a
phase on its first noisy evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..metrics import names
from ..metrics.store import MetricSeries


OVERLAY_MODES = ("auto", "every_check", "off")


@dataclass
class StopSchedule:
    enabled: bool = True
    interval_s: float | None = None
    interval_steps: int | None = 10
    min_evals: int = 2
    overlays: str = "auto"  # OVERLAY_MODES
    _last_step: dict[int, int] = field(default_factory=dict)
    _last_time: dict[int, float] = field(default_factory=dict)

    def due(self, node_id: int, metrics: MetricSeries, now: float | None = None) -> bool:
        if not self.enabled:
            return False
        if len(metrics.series(names.VAL_SCORE)) < self.min_evals:
            return False
        now = time.monotonic() if now is None else now
        step = metrics.last_step()
        last_step = self._last_step.setdefault(node_id, 0)
        last_time = self._last_time.setdefault(node_id, now)
        by_steps = self.interval_steps is not None and step - last_step >= self.interval_steps
        by_time = self.interval_s is not None and now - last_time >= self.interval_s
        if by_steps or by_time:
            self._last_step[node_id] = step
            self._last_time[node_id] = now
            return True
        return False

    def overlay_at_check(self, agent_reads_images: bool) -> bool:
        return self.overlays == "every_check" or (self.overlays == "auto" and agent_reads_images)

    def overlay_at_end(self, agent_reads_images: bool) -> bool:
        # A stopper that reads numbers does not need a picture per check (about 1 s of matplotlib each);
        # one per phase, at its end, still shows the report what the stopper was judging.
        return self.overlays == "auto" and not agent_reads_images

    def forget(self, node_id: int) -> None:
        self._last_step.pop(node_id, None)
        self._last_time.pop(node_id, None)

"""The search's own queue for phases whose GPU workers place themselves on the Ray cluster (trainer=verl).

Such a phase's Ray job reserves no GPU (its driver needs none; verl's workers claim the phase's GPUs through their
own placement groups once it runs), so Ray starts every submitted job at once. verl then checks the free GPUs per
node and raises when another phase holds them. So the executor submits such a job only when the cluster's GPUs,
less those this search's admitted phases hold, cover it: phases wait here, shown as queued, in launch order.

Another tenant's jobs are not counted (Ray's free-GPU figure would count this search's starting phases twice); on a
shared cluster, verl's own check remains the last word. On a cluster that adds GPU nodes on demand
(cluster.check_resources=false), the first waiting phase is always admitted, so its workers' placement groups are
the demand the autoscaler sees; the next waits until a phase ends or the new nodes have joined.
"""

from __future__ import annotations

import time
from typing import Any, Callable

REFRESH_S = 30.0  # how often the cluster's GPU total is asked again (nodes join and leave)


class GpuGate:
    def __init__(self, total_gpus: Callable[[], float | None]) -> None:
        """`total_gpus`: the cluster's GPU count now (None when it cannot be listed: admit one phase at a time)."""
        self._total_of = total_gpus
        self._total: float | None = None
        self._asked = 0.0
        self._waiting: list[Any] = []  # handles not yet submitted, in launch order
        self._holding: list[Any] = []  # handles submitted by the gate whose job may still hold GPUs

    def enqueue(self, handle: Any) -> None:
        self._waiting.append(handle)

    def hold(self, handle: Any) -> None:
        """A job already on the cluster (one found again after a restart) counts against the GPUs."""
        self._holding.append(handle)

    def admit(self, handle: Any) -> bool:
        """Whether `handle` (waiting, first in line) may be submitted now; if so it moves to the holders."""
        self._holding = [h for h in self._holding if not h.finished]
        self._waiting = [h for h in self._waiting if not h.finished]
        if not self._waiting or self._waiting[0] is not handle:
            return False
        held = sum(h.gpus for h in self._holding)
        total = self.total()
        fits = (not self._holding) if total is None else held + handle.gpus <= total or not self._holding
        if fits:
            self._waiting.pop(0)
            self._holding.append(handle)
        return fits

    def total(self) -> float | None:
        now = time.monotonic()
        if self._total is None or now - self._asked > REFRESH_S:
            self._asked = now
            self._total = self._total_of()
        return self._total

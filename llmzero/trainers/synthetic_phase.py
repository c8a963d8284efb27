"""The simulator's phase as its own process: `python -m llmzero.trainers.synthetic_phase <phase_config.json>`.

This is how an executor that runs phases on other machines (cluster=ray) runs trainer=synthetic: the same
SyntheticPhase as in-process, speaking through the same phase-directory files as the TRL phase (metrics.jsonl,
log.txt, checkpoints/, and result.json written last). A STOP file or SIGTERM ends it as early_stopped.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from .base import PhaseSpec
from .child_main import child_config, write_result
from .synthetic import SyntheticPhase, SyntheticTrainer

USAGE = "python -m llmzero.trainers.synthetic_phase <phase_config.json>"


def main(argv: list[str] | None = None) -> int:
    found = child_config(argv, USAGE)
    if found is None:
        return 2
    config, _ = found
    spec = PhaseSpec.from_dict(config["spec"])
    trainer = SyntheticTrainer(task=config["task"], model=config["model"], **config["trainer"])
    phase = SyntheticPhase(trainer, spec, prepared=True)

    def on_sigterm(signum: int, frame: Any) -> None:
        if not phase.stop_requested():  # a STOP file's reason wins over the bare signal
            phase.stop("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    while not phase.wait(0.5):  # the timeout lets the signal handler run
        pass
    result = phase.result()
    write_result(spec.dir, result.status, error=result.error, steps_done=result.steps_done)
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())

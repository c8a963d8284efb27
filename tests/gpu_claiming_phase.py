"""FAKE verl phase for the Ray tests (no GPU here): claims its GPUs the way verl's workers do, from inside the job.

    python gpu_claiming_phase.py <phase_dir> <gpus> <seconds>

Like verl's ResourcePoolManager, it first checks that Ray reports enough free GPUs and fails at once if not (verl
raises "Total available GPUs ... is less than total desired GPUs"); then it holds a placement group of that many
GPUs for `seconds` and writes result.json. The job itself reserves none, as a verl phase's does.
"""

import json
import sys
import time
from pathlib import Path

import ray
from ray.util.placement_group import placement_group, remove_placement_group

phase_dir, gpus, seconds = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
phase_dir.mkdir(parents=True, exist_ok=True)
ray.init(logging_level="ERROR")
free = ray.available_resources().get("GPU", 0.0)
if free < gpus:
    (phase_dir / "result.json").write_text(json.dumps({
        "status": "failed", "steps_done": 0,
        "error": f"Total available GPUs {free} is less than total desired GPUs {gpus}"}))
    sys.exit(1)
pg = placement_group([{"GPU": gpus}])
ray.get(pg.ready(), timeout=10)
(phase_dir / "claimed").write_text(f"{time.time()}\n")
time.sleep(seconds)
remove_placement_group(pg)
(phase_dir / "released").write_text(f"{time.time()}\n")
(phase_dir / "result.json").write_text(json.dumps({"status": "completed", "steps_done": 1}))

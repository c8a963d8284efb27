"""End of a search: the best node's test score and the base model's reference scores.

The paper reports test at the best validation step (§4.1), and the base model for reference.
Each figure is computed once per search (a resumed search keeps the earlier ones), and all that
is missing is asked of the backend in one batch: the TRL backend scores them in one process.
"""

from __future__ import annotations

from typing import Any, Callable

from ..state.phase_dir import checkpoint_dir
from ..state.rundir import RunDir
from ..trainers.base import EvalRequest, TrainerBackend
from ..tree import Tree

FINAL_EVAL_DIR = "final_eval"


def evaluate_final(tree: Tree, rundir: RunDir, trainer: TrainerBackend, meta: dict[str, Any],
                   root_hparams: dict[str, Any], say: Callable[[str], None], executor: Any = None) -> None:
    """Fill in best.test_score and meta["base_model"] {"val", "test"} where the backend can evaluate.

    The base model is scored with θ0's settings (its response length, say), a checkpoint with its phase's. An
    executor with an `evaluate` (cluster=ray) runs the scoring where the phases ran, its files in the search
    directory's final_eval/ (the machine running the search may have no GPU, and the workers cannot read its /tmp)."""
    if not trainer.can_evaluate:
        return
    best = tree.best_node()
    base = meta.setdefault("base_model", {})
    requests: list[EvalRequest] = []
    labels: list[str] = []
    if best is not None and best.test_score is None and best.best_step in best.checkpoints:
        requests.append(EvalRequest(str(checkpoint_dir(rundir.node_dir(best.id), best.best_step)), "test",
                                    dict(best.hparams)))
        labels.append(f"node {best.id} step {best.best_step} on test")
    missing = [split for split in ("val", "test") if split not in base]
    requests += [EvalRequest(None, split, dict(root_hparams)) for split in missing]
    labels += [f"the base model on {split}" for split in missing]
    if not requests:
        return
    say(f"evaluating {', '.join(labels)} ({len(requests)} scoring{'s' if len(requests) > 1 else ''}, "
        f"one evaluation run)")
    run_on_cluster = getattr(executor, "evaluate", None)
    results = (run_on_cluster(trainer, requests, rundir.root / FINAL_EVAL_DIR) if callable(run_on_cluster)
               else trainer.evaluate_batch(requests))
    for req, scores in zip(requests, results):
        if not scores or "score" not in scores:
            continue
        if req.checkpoint is not None:
            best.test_score = float(scores["score"])
        else:
            base[req.split] = float(scores["score"])
    say("final evaluation done: " + ", ".join(
        f"{label} {scores['score']:.3f}" if scores and "score" in scores else f"{label} failed"
        for label, scores in zip(labels, results)))

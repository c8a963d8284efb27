#!/usr/bin/env bash
# GPU smoke check of the trainer backends (issue 14): a 2-phase search (the root and one child) on one GPU, then a
# check that the child really continued from its parent's adapter; and a PaperSearchQA phase with its search tool
# under verl, checking that verl's rollouts called the tool.
#
#   bash benchmarks/gpu_smoke.sh [verl|trl|verl-search|all]    (default: all; results under ${OUT:-/tmp/llmzero-gpu-smoke})
#
# Needs an NVIDIA GPU and, for verl, `pip install 'llmzero[verl]' vllm` (verl's rollouts run on vLLM). Nothing is
# downloaded: the model is builtin:tiny (a small Qwen3 built and saved to a folder by llmzero, with a short warm start)
# and the task is the embedded arithmetic one, or PaperSearchQA's test fixture and corpus (tests/fixtures/tasks). The
# trl variant needs only the packages of `pip install -e .`.
#
# The check: with kl_coef > 0, KL is measured against the base model (under LoRA the reference is the actor with its
# adapter disabled), so a phase starting from a FRESH adapter has KL = 0 at its first step, and a child that loaded its
# parent's adapter starts near the parent's KL at the step it resumed from. The script prints both numbers and fails
# unless the child's first KL is at least a fifth of the parent's (and the parent's is not ~0).
# The search check: the warm start teaches the tiny model to write <search> (as tests/test_task_search_tool.py does);
# verl logs num_turns per rollout, and a rollout that searched has at least 4 (prompt, call, documents, answer).
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-all}"
OUT="${OUT:-/tmp/llmzero-gpu-smoke}"
PY="${PYTHON:-python}"
nvidia-smi -L || { echo "gpu_smoke: no NVIDIA GPU visible (nvidia-smi failed)"; exit 2; }
mkdir -p "$OUT"

COMMON=(task=arithmetic model=tiny search.budget=2 search.display=false wandb.mode=offline
        hparams.max_steps=6 hparams.batch_size=16 hparams.rollouts=4 hparams.learning_rate=1e-3 hparams.kl_coef=1e-3
        trainer.eval_every=3 trainer.save_every=3 +model.build.sft_steps=300)

check_child() {  # $1: the search directory
  "$PY" - "$1" <<'PYCHECK'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
tree = json.loads((root / "tree.json").read_text())
nodes = {n["id"]: n for n in tree["nodes"]}
child = next((n for n in nodes.values() if n.get("parent") is not None and n.get("status") == "completed"), None)
if child is None:
    sys.exit(f"gpu_smoke: FAIL: no completed child phase in {root} (statuses: "
             f"{[(n['id'], n.get('status')) for n in nodes.values()]})")
records = lambda i: [json.loads(l) for l in (root / "nodes" / str(i) / "metrics.jsonl").read_text().splitlines() if l]
spec = json.loads((root / "nodes" / str(child["id"]) / "phase_config.json").read_text())["spec"]
resumed = int(spec["init_checkpoint"].rstrip("/").rsplit("step_", 1)[1])
parent = {r["step"]: r for r in records(child["parent"])}[resumed]
first = records(child["id"])[0]
print(f"parent #{child['parent']} at step {resumed}: kl={parent.get('kl')} reward={parent.get('reward/mean')}")
print(f"child  #{child['id']} first step:     kl={first.get('kl')} reward={first.get('reward/mean')}")
ok = parent.get("kl", 0) > 1e-6 and first.get("kl", 0) >= parent["kl"] / 5
print("gpu_smoke:", "PASS" if ok else "FAIL", "- the child continued from its parent's adapter" if ok else
      "- the child's first KL does not continue from its parent's (did it load the adapter?)")
sys.exit(0 if ok else 1)
PYCHECK
}

check_searched() {  # $1: the search directory
  "$PY" - "$1" <<'PYCHECK'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
turns = [json.loads(l)["data"].get("num_turns/max", 0) for f in (root / "nodes" / "0" / "verl").glob("*.metrics.jsonl")
         for l in f.read_text().splitlines() if l.strip()]
print(f"verl num_turns/max per step: {turns}")
ok = bool(turns) and max(turns) >= 4
print("gpu_smoke:", "PASS - verl's rollouts called the search tool" if ok else
      "FAIL - no rollout searched (no num_turns/max >= 4 in verl's metrics)")
sys.exit(0 if ok else 1)
PYCHECK
}

status=0
if [[ "$WHICH" == verl || "$WHICH" == all ]]; then
  "$PY" -c "import verl, vllm; print('verl', verl.__version__, 'vllm', vllm.__version__)"
  rm -rf "$OUT/verl"
  "$PY" -m llmzero trainer=verl cluster.gpus_per_phase=1 trainer.gpu_memory_utilization=0.4 "${COMMON[@]}" \
    search.dir="$OUT/verl" || status=1
  check_child "$OUT/verl" || status=1
fi
if [[ "$WHICH" == verl-search || "$WHICH" == all ]]; then
  FIX=tests/fixtures/tasks
  rm -rf "$OUT/verl-search"
  "$PY" -m llmzero trainer=verl cluster.gpus_per_phase=1 trainer.gpu_memory_utilization=0.4 task=papersearchqa \
    task.data_files="$FIX/papersearchqa.jsonl" task.retriever.corpus="$FIX/pubmed_corpus.jsonl" task.retriever.topk=1 \
    model=tiny +model.build.sft_steps=150 +model.build.sft_batch_size=6 search.budget=1 search.display=false \
    wandb.mode=offline hparams.max_steps=2 hparams.batch_size=4 hparams.rollouts=4 hparams.response_length=256 \
    trainer.eval_every=2 trainer.save_every=2 search.dir="$OUT/verl-search" || status=1
  check_searched "$OUT/verl-search" || status=1
fi
if [[ "$WHICH" == trl || "$WHICH" == all ]]; then
  rm -rf "$OUT/trl"
  "$PY" -m llmzero trainer=trl trainer.device=cuda cluster.gpus_per_phase=1 "${COMMON[@]}" search.dir="$OUT/trl" \
    || status=1
  check_child "$OUT/trl" || status=1
fi
exit $status

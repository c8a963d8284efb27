#!/usr/bin/env bash
# GPU smoke check of the cluster path (issue 25): one command from a clean checkout, one folder of results.
#
#   bash benchmarks/gpu_smoke.sh [imports] [ray] [stop] [memory] [trl] [search-tool]    (default: imports ray stop memory)
#
# Needs an NVIDIA GPU and `pip install -e '.[verl]' vllm` (see docs/backends.md). Nothing is downloaded.
# Every stage prints `gpu_smoke: <stage>: PASS|FAIL - <what it measured>` and its time; the whole output is kept in
# $OUT/smoke.log (default /tmp/llmzero-gpu-smoke) beside each stage's search or phase directory. The stages are
# described in benchmarks/gpu_smoke.py; exit status 0 only when all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/llmzero-gpu-smoke}"
PY="${PYTHON:-python}"
rm -rf "$OUT" && mkdir -p "$OUT"
"$PY" benchmarks/gpu_smoke.py --out "$OUT" "$@" 2>&1 | tee "$OUT/smoke.log"
exit "${PIPESTATUS[0]}"

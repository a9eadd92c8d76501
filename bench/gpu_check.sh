#!/usr/bin/env bash
# One-call GPU check (issue 13): every CUDA test (pytest -m cuda), then bench/gpu_check.py's
# table (the Recorder on CUDA and on the CPU, the decay kernel with torch on the GPU against
# numpy, the 2:4 semi-structured Linear against dense at 4096x4096 in float16 and bfloat16).
# Under 8 minutes on one GPU. Without CUDA it runs the CPU rows, says that the CUDA parts were
# skipped and exits 0. Exits 1 if a CUDA test fails.
#
# Run: bash bench/gpu_check.sh  (or make gpu-check); PY=python3 to use another interpreter.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
status=0
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    log=$(mktemp)
    timeout 300 "$PY" -m pytest -m cuda tests -q -p no:cacheprovider >"$log" 2>&1 || status=1
    tests=$(tail -n 1 "$log")
    [ "$status" = 0 ] || { echo "CUDA tests failed; their output:"; tail -n 40 "$log"; }
    rm -f "$log"
else
    tests="skipped: torch sees no CUDA device"
fi
"$PY" bench/gpu_check.py --tests "$tests" "$@" || status=1
exit "$status"

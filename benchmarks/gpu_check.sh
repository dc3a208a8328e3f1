#!/usr/bin/env bash
# GPU check for a machine with one NVIDIA GPU; finishes in under 8 minutes.
#
#   bash benchmarks/gpu_check.sh            # uses python3
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Steps (each under `timeout`, all within one overall deadline, default 450 s;
# override with GPU_CHECK_BUDGET_S):
#   1. nvidia-smi, torch / CUDA versions
#   2. carried wheels (.whl/) into /tmp; the project runs from the working tree (no network there)
#   3. test suite on CUDA:  UNLEARNLIB_TEST_DEVICE=cuda python -m pytest -q -m 'not slow' -p no:cacheprovider
#   4. benchmark: synthetic CIFAR (10,000 x 3x32x32, resnet18_cifar), 2 epochs, cuda
#   5. benchmark: default mnist1d + cnn1d, cuda
#   6. ensemble benchmarks (cnn1d K=64, resnet18_cifar synthetic), cuda
#   7. methods engine: every tunable method x 10 seeds, engine vs per-seed loop (--quick), cuda
# A failing step does not stop the others; the exit codes are listed at the end
# (124 = timed out, "skip" = no time left) and the script exits 1 if any step failed.
set -u

cd "$(dirname "$0")/.." || exit 2
PYTHON="${PYTHON:-python3}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"
START_S=$(date +%s)
DEADLINE_S=$((START_S + BUDGET_S))

declare -a NAMES=() CODES=()

# run_step NAME CAP_SECONDS CMD...: run CMD under timeout min(CAP, time left), record its exit code.
run_step() {
    local name="$1" cap="$2"
    shift 2
    local left=$((DEADLINE_S - $(date +%s)))
    local limit=$((cap < left ? cap : left))
    echo
    echo "=== ${name} (limit ${limit} s, $((left)) s left overall) ==="
    if ((limit < 10)); then
        echo "skipped: not enough time left"
        NAMES+=("$name")
        CODES+=("skip")
        return
    fi
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "--- ${name}: exit ${rc} after $(($(date +%s) - t0)) s"
    NAMES+=("$name")
    CODES+=("$rc")
}

run_step "nvidia-smi" 30 nvidia-smi

run_step "torch/cuda versions" 60 "$PYTHON" -c '
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| built for CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version())
print("cuda available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
if torch.cuda.is_available():
    print("device 0:", torch.cuda.get_device_name(0), "| capability", torch.cuda.get_device_capability(0))
'

# The GPU machine has no network: pure-Python dependencies it lacks (mnist1d,
# mlxtend, ...) travel as wheels in .whl/ (see benchmarks/README.md), and the
# project itself is used from the working tree, without pip touching torch.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    run_step "install carried wheels" 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --target /tmp/unlearnlib-site .whl/*.whl
    export PYTHONPATH="/tmp/unlearnlib-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
run_step "import check" 60 "$PYTHON" -c 'import unlearnlib, mnist1d, mlxtend, torch; print("unlearnlib from", unlearnlib.__file__)'

run_step "pytest on cuda" 240 env UNLEARNLIB_TEST_DEVICE=cuda "$PYTHON" -m pytest -q -m 'not slow' -p no:cacheprovider ${GPU_CHECK_TESTS:-tests}

run_step "benchmark synthetic-cifar 10000 (cuda)" 150 \
    "$PYTHON" benchmarks/training.py --device cuda --synthetic-cifar 10000 --epochs 2

run_step "benchmark mnist1d (cuda)" 90 "$PYTHON" benchmarks/training.py --device cuda

run_step "ensemble K=64 cnn1d (cuda)" 120 "$PYTHON" benchmarks/ensemble.py --device cuda

run_step "ensemble K=64 resnet18_cifar synthetic (cuda)" 120 \
    "$PYTHON" benchmarks/ensemble.py --device cuda --model resnet18_cifar --synthetic-cifar 4096

run_step "methods engine, 24 methods x 10 seeds, quick (cuda)" 150 \
    "$PYTHON" benchmarks/methods_engine.py --device cuda --seeds 10 --quick

echo
echo "=== summary ($(($(date +%s) - START_S)) s total) ==="
failed=0
for i in "${!NAMES[@]}"; do
    printf '%-45s %s\n' "${NAMES[$i]}" "${CODES[$i]}"
    [[ "${CODES[$i]}" == 0 ]] || failed=1
done
exit "$failed"

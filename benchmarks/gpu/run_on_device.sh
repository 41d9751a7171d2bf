#!/usr/bin/env bash
# Everything that needs the GPU, on the lent machine (which starts bare, with torch+CUDA
# preinstalled): builds the extension with the CUDA kernels for sm_90, runs the CUDA tests, then the
# GPU speed benchmark (an fp32 table and a bf16 table with master weights).
#
#   bash benchmarks/gpu/run_on_device.sh [all|test|speed]     (from the repository root)
#
# `all` (default) does everything in one call; where that may pass the device's 10-minute limit per
# command, call `test` (build and CUDA tests) and then `speed` (the build is kept on the warm
# machine and only checked). Logs and the speed CSVs and reports (markdown) go to $OUT (what the
# device tool fetches back; at most 8 files), the CSVs and reports with plots to results/gpu/.
# Set OPTIMIZERS_GIT_COMMIT to the commit being tested when the tree was copied without .git, so
# the CSVs still name it. Exit status: non-zero if the build or any test failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
WHAT=${1:-all}
OUT=${OUT:-results/gpu}
mkdir -p "$OUT" results/gpu
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
phase() { echo "=== $* ($(date +%T))"; }

phase environment
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem \
    --format=csv 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  nvcc --version | tail -2
  echo "commit ${OPTIMIZERS_GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} 2>&1 | tee "$OUT/env.txt"

phase "build (TORCH_CUDA_ARCH_LIST=9.0)"
export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=${MAX_JOBS:-16} OPTIMIZERS_CUDA=1
start=$SECONDS
"$PY" -m pip install --no-build-isolation --no-deps --no-index -e . >"$OUT/build.log" 2>&1
if ! "$PY" -c "import optimizers._C as C, sys; sys.exit(0 if C.with_cuda else 1)" 2>>"$OUT/build.log"; then
  # The editable install may leave the module outside the tree: build it in place instead.
  echo "--- pip -e did not give an importable CUDA build; setup.py build_ext --inplace" >>"$OUT/build.log"
  "$PY" setup.py build_ext --inplace >>"$OUT/build.log" 2>&1
fi
if ! "$PY" -c "import optimizers._C as C, sys; sys.exit(0 if C.with_cuda else 1)"; then
  tail -60 "$OUT/build.log"
  echo "BUILD FAILED (see build.log)"
  exit 1
fi
grep -E "warning|ptxas" "$OUT/build.log" | head -20
echo "built in $((SECONDS - start)) s"

tests_status=0
if [ "$WHAT" != speed ]; then
phase tests
timeout 270 "$PY" -m pytest tests/test_cuda.py tests/test_cuda_compile.py -q -rfEs -p no:cacheprovider \
  --durations=10 >"$OUT/tests.log" 2>&1
tests_status=$?
tail -40 "$OUT/tests.log"
fi

if [ "$WHAT" != test ]; then
phase "speed benchmark"
timeout 420 "$PY" -m benchmarks.gpu.speed_cuda --out results/gpu 2>&1 | tee "$OUT/speed.log"
cp results/gpu/speed_cuda_*.csv results/gpu/speed_cuda_*.md "$OUT"/ 2>/dev/null
fi

phase done
cat "$OUT"/speed_cuda_*.md 2>/dev/null | grep -E "^\|" | head -80
echo "tests exit status: $tests_status"
exit $tests_status

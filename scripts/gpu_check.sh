#!/usr/bin/env bash
# One-shot GPU proof run for a lent H100/H200: compiled kernel tests, compute-sanitizer on
# the attention kernels, the kernel benchmark and the engine benchmark. Everything lands
# in $OUT (or .tmp/gpu when OUT is unset). Each step has its own time limit so one slow
# step cannot eat the whole lease.
set -u
OUT=${OUT:-.tmp/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
T_TESTS=${T_TESTS:-150} T_SAN=${T_SAN:-60} T_KB=${T_KB:-120} T_EB=${T_EB:-150}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
# tests/conftest.py holds database fixtures whose drivers are not on the GPU image.
timeout "$T_TESTS" $PY -m pytest tests/kernels tests/engine/test_models_parity.py -q -x \
  --confcutdir=tests/kernels -p no:cacheprovider -o addopts="" 2>&1 | tail -n 40 | tee "$OUT/tests.txt"
if command -v compute-sanitizer >/dev/null && [ -f scripts/sanitize_attention.py ]; then
  timeout "$T_SAN" compute-sanitizer --tool memcheck --error-exitcode 9 \
    $PY scripts/sanitize_attention.py 2>&1 | tail -n 20 | tee "$OUT/sanitizer.txt"
  echo "sanitizer exit: ${PIPESTATUS[0]}" | tee -a "$OUT/sanitizer.txt"
fi
timeout "$T_KB" $PY benchmarks/kernels.py --no-compile --out "$OUT/kernels.json" 2>&1 | tail -n 60 | tee "$OUT/kernels.txt"
timeout "$T_EB" $PY benchmarks/engine.py --out "$OUT/engine.json" 2>&1 | tail -n 60 | tee "$OUT/engine.txt"
echo done

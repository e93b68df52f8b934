#!/usr/bin/env bash
# One-shot GPU proof run for a lent H100/H200: compiled kernel + model tests, the kernel
# benchmark and the engine benchmark. Everything lands in $OUT (or .tmp/gpu when unset).
# Each step has its own time limit so one slow step cannot eat the whole lease.
set -u
OUT=${OUT:-.tmp/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
T_TESTS=${T_TESTS:-75} T_KB=${T_KB:-75} T_EB=${T_EB:-110}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > "$OUT/gpu.txt" 2>&1
# tests/conftest.py holds database fixtures whose drivers are not on the GPU image.
timeout "$T_TESTS" $PY -m pytest tests/kernels -q --confcutdir=tests/kernels -p no:cacheprovider -n 12 > "$OUT/tests.txt" 2>&1
echo "kernel tests exit $?" >> "$OUT/tests.txt"
timeout 60 $PY -m pytest tests/engine/test_models_parity.py tests/engine/test_engine.py -q --noconftest -p no:cacheprovider -n 8 >> "$OUT/tests.txt" 2>&1
echo "engine tests exit $?" >> "$OUT/tests.txt"
timeout "$T_KB" $PY benchmarks/kernels.py --no-compile --out "$OUT/kernels.json" > "$OUT/kernels.txt" 2>&1
echo "kernels exit $?" >> "$OUT/kernels.txt"
timeout "$T_EB" $PY benchmarks/engine.py --models qwen2.5-0.5b-instruct --out "$OUT/engine.json" > "$OUT/engine.txt" 2>&1
echo "engine exit $?" >> "$OUT/engine.txt"
tail -n 5 "$OUT/tests.txt"; tail -n 30 "$OUT/kernels.txt"; tail -n 30 "$OUT/engine.txt"

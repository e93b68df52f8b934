#!/usr/bin/env bash
# One-shot GPU proof run for a lent H100/H200: compiled kernel + model tests, the kernel,
# engine and translation benchmarks. Everything lands in $OUT (or .tmp/gpu when unset).
# Each step has its own time limit so one slow step cannot eat the whole lease.
set -u
OUT=${OUT:-.tmp/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
# The GPU image lacks pytest-asyncio and gguf: scripts/gpu_wheels.sh fetches them into
# .whl/; carry .whl (see
# ../.library/device/README.md, "carry") and they are put on the path here.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# Defaults fit ~11 minutes, leaving room in a 15-minute lease for the machine's start.
T_TESTS=${T_TESTS:-100} T_ET=${T_ET:-80} T_KB=${T_KB:-90} T_EB=${T_EB:-300} T_TB=${T_TB:-90}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > "$OUT/gpu.txt" 2>&1
# tests/conftest.py holds database fixtures whose drivers are not on the GPU image.
timeout "$T_TESTS" $PY -m pytest tests/kernels -q --confcutdir=tests/kernels -p no:cacheprovider -n 12 > "$OUT/tests.txt" 2>&1
echo "kernel tests exit $?" >> "$OUT/tests.txt"
timeout "$T_ET" $PY -m pytest tests/engine/test_models_parity.py tests/engine/test_engine.py tests/engine/test_prefix_cache.py tests/engine/test_runner_cpu.py tests/engine/translation -m "not slow" -q --noconftest -p no:cacheprovider -n 8 >> "$OUT/tests.txt" 2>&1
echo "engine tests exit $?" >> "$OUT/tests.txt"
timeout "$T_KB" $PY benchmarks/kernels.py --no-compile --out "$OUT/kernels.json" > "$OUT/kernels.txt" 2>&1
echo "kernels exit $?" >> "$OUT/kernels.txt"
timeout "$T_EB" $PY benchmarks/engine.py --models qwen2.5-0.5b-instruct --section-budget-s 70 --out "$OUT/engine.json" > "$OUT/engine.txt" 2>&1
echo "engine exit $?" >> "$OUT/engine.txt"
# OPUS-MT first: the JSON is rewritten after every case, so a timeout keeps what ran.
timeout "$T_TB" $PY benchmarks/translation.py --out "$OUT/translation.json" > "$OUT/translation.txt" 2>&1
echo "translation exit $?" >> "$OUT/translation.txt"
tail -n 5 "$OUT/tests.txt"; tail -n 30 "$OUT/kernels.txt"; tail -n 30 "$OUT/engine.txt"
tail -n 12 "$OUT/translation.txt"

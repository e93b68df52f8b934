#!/usr/bin/env bash
# One-shot GPU proof run for a lent H100/H200: compiled kernel + model tests, compute-sanitizer
# on the attention kernels, the kernel, engine and translation benchmarks, and an engine profile.
# Everything lands in one archive, $OUT/gpu-check.tar.gz ($OUT: .tmp/gpu when unset), since
# the device tool brings back at most 8 files.
# Each step has its own time limit so one slow step cannot eat the whole lease; the limits
# sum to ~9.3 minutes, leaving room in a 15-minute lease for the machine's start.
# Usage there: BOTKIT_GIT_REVISION=<sha sent> bash scripts/gpu_check.sh
set -u
FINAL=${OUT:-.tmp/gpu}; OUT=/tmp/gpu-check; mkdir -p "$FINAL" "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
git config --global --add safe.directory '*' 2>/dev/null
# The GPU image lacks pytest-asyncio and gguf: scripts/gpu_wheels.sh fetches them into
# .whl/; carry .whl (see ../.library/device/README.md, "carry") and they go on the path here.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
# Defaults favour what no GPU has run yet (beam-4 translation decoding on CUDA graphs:
# the benchmark used to run beam search eagerly; overlapped decode steps, sampled): the
# engine tests, the translation benchmark and the profile's A/B first; the kernel tests
# and benchmark (proven on the H200 at f96ff16) get what is left. The steps run in this
# order.
T_ET=${T_ET:-130} T_TB=${T_TB:-90} T_PROF=${T_PROF:-45} T_EB=${T_EB:-105}
T_KT=${T_KT:-60} T_SAN=${T_SAN:-35} T_KB=${T_KB:-60} SECTION_S=${SECTION_S:-22}
T_SWEEP=${T_SWEEP:-0} T_SKINNY=${T_SKINNY:-35}
KB_KERNELS=${KB_KERNELS:-skinny_linear,rope_and_cache,write_kv_cache,decode,rms_norm}
# SIGINT first, so pytest and the benchmarks print what they have before they stop.
# A limit of 0 skips the step (a second, shorter run of what the first could not finish).
limit() {
  local s=$1; shift
  if [ "$s" = 0 ]; then echo "skipped: $*"; return 0; fi
  timeout -s INT -k 10 "$s" "$@"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, triton, transformers as t; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', t.__version__)"
  echo "revision ${BOTKIT_GIT_REVISION:-unknown}"; } > "$OUT/gpu.txt" 2>&1
# GPU-relevant engine tests only (the rest run in CI); the LocalEngineBackend tests need
# botkit's own dependencies (pydantic, ...), which the GPU image lacks.
limit "$T_ET" $PY -m pytest tests/engine/test_models_parity.py tests/engine/test_engine.py tests/engine/test_prefix_cache.py tests/engine/test_overlap_steps.py tests/engine/translation/test_translation_gpu.py tests/engine/translation/test_translation_api.py -m "not slow" -k "not test_backend_" -q -rfE --noconftest -p no:cacheprovider -n 15 > "$OUT/tests.txt" 2>&1
echo "engine tests exit $?" >> "$OUT/tests.txt"
# OPUS-MT first: the JSON is rewritten after every case, so a time limit keeps what ran.
limit "$T_TB" $PY benchmarks/translation.py --out "$OUT/translation.json" > "$OUT/translation.txt" 2>&1
echo "translation exit $?" >> "$OUT/translation.txt"
limit "$T_PROF" $PY scripts/profile_engine.py --out "$OUT/profile" > "$OUT/profile.txt" 2>&1
echo "engine profile exit $?" >> "$OUT/profile.txt"
# The batch-1 A/B for EngineConfig.skinny_kernels (off by default until this says it wins):
# compare decode.ms_per_step and gpu_kernel_ms_per_step with profile/ttft-profile.json.
limit "$T_SKINNY" $PY scripts/profile_engine.py --skinny-kernels --chats 0 --requests 2 --out "$OUT/profile-skinny" > "$OUT/profile-skinny.txt" 2>&1
echo "skinny profile exit $?" >> "$OUT/profile-skinny.txt"
limit "$T_EB" $PY benchmarks/engine.py --models qwen2.5-0.5b-instruct --section-budget-s "$SECTION_S" --out "$OUT/engine.json" > "$OUT/engine.txt" 2>&1
echo "engine exit $?" >> "$OUT/engine.txt"
# tests/conftest.py holds database fixtures whose drivers are not on the GPU image.
limit "$T_KT" $PY -m pytest tests/kernels -q -rfE --confcutdir=tests/kernels -p no:cacheprovider -n 15 >> "$OUT/tests.txt" 2>&1
echo "kernel tests exit $?" >> "$OUT/tests.txt"
limit "$T_SAN" compute-sanitizer --tool memcheck --error-exitcode 9 $PY scripts/sanitize_attention.py > "$OUT/sanitizer.txt" 2>&1
echo "compute-sanitizer exit $?" >> "$OUT/sanitizer.txt"
limit "$T_KB" $PY benchmarks/kernels.py --no-compile --kernels "$KB_KERNELS" --out "$OUT/kernels.json" > "$OUT/kernels.txt" 2>&1
echo "kernels exit $?" >> "$OUT/kernels.txt"
limit "$T_SWEEP" $PY scripts/decode_split_sweep.py --out "$OUT/decode_sweep.json" > "$OUT/decode_sweep.txt" 2>&1
tail -n 4 "$OUT/gpu.txt"; grep -E "passed|failed|exit" "$OUT/tests.txt"; tail -n 3 "$OUT/sanitizer.txt"
grep -E "PASS|MISS|exit|ERROR" "$OUT/kernels.txt" | head -30; cat "$OUT/decode_sweep.txt" 2>/dev/null | tail -30; tail -n 25 "$OUT/engine.txt"
tail -n 12 "$OUT/translation.txt"; tail -n 3 "$OUT/profile.txt"
grep -A6 '"decode"' "$OUT/profile/ttft-profile.json" "$OUT/profile-skinny/ttft-profile.json" 2>/dev/null
tar czf "$FINAL/gpu-check.tar.gz" -C "$OUT" .

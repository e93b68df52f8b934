#!/usr/bin/env bash
# Fetch the wheels the lent GPU machine lacks (Python 3.12 there) into .whl/, which
# scripts/gpu_check.sh installs first; name .whl in the device run's `carry`.
# See ../.library/device/README.md ("a Python package missing there").
set -eu
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .whl \
  "pytest-asyncio>=0.24" "gguf>=0.10"
ls -l .whl

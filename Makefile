# Two entry points: `make demo` (main job on the bundled sample) and `make test` (whole suite).
# Both create .venv on first use; re-running is cheap and idempotent.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench cuda-build clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/quantedge demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/quantedge bench

# every CUDA kernel through NVVM + ptxas for compute capability 5.0 to 9.0 (no GPU needed)
cuda-build: $(STAMP)
	$(BIN)/python scripts/cuda_build.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache

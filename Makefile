# Two commands: `make demo` (set up everything, tell the story) and `make test` (set up, run all tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/lakeops demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/freshness_lag.py
	$(BIN)/python benchmarks/versioning.py
	$(BIN)/python benchmarks/promotion.py
	$(BIN)/python benchmarks/release_diff.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/contention.py

clean:
	rm -rf $(VENV) .lakeops .pytest_cache .mypy_cache

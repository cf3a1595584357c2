# Two commands: `make demo` (set up everything, tell the story) and `make test` (set up, run all tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint bench clean

# The suites that read and write table files, run a second time with the warehouse on S3 (moto on loopback).
S3_SUITES := $(addprefix tests/unit/,test_pipeline.py test_lake.py test_timetravel.py test_history.py \
	test_replay.py test_rollback.py test_release.py test_promotion.py test_maintenance.py test_tags.py test_status.py)

# The e2e suites that exercise the worker, run a second time on Prefect's process worker (the default is the warm one).
PROCESS_SUITES := $(addprefix tests/e2e/,test_readiness_pipeline.py test_healer.py test_dead_infra.py)

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
	TEST_LAKE=s3 $(BIN)/python -m pytest $(S3_SUITES)
	LAKEOPS_WORKER=process $(BIN)/python -m pytest $(PROCESS_SUITES)

test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/freshness_lag.py
	$(BIN)/python benchmarks/warm_robustness.py
	$(BIN)/python benchmarks/versioning.py
	$(BIN)/python benchmarks/promotion.py
	$(BIN)/python benchmarks/release_diff.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/contention.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) .lakeops .pytest_cache .mypy_cache

# SaBN reproduction suite. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install test lint bench

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-28s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv and install the project with its dev extra (quick when already installed)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

test: install ## Run the test suite on CPU (installs first if needed)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: install ## Check the code with ruff
	$(BIN)/ruff check sabn tasks scripts tests

bench: install ## Run the benchmark scripts (timings and ratios against a baseline measured in the same run)
	$(BIN)/python scripts/bench_norms.py

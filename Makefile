# Everything runs from the project's own virtualenv, created on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench kill-test docs run clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/broadcast-bot demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -n 2

test: lint typecheck unit

# BENCH_WRITE_DOCS=1 also writes the run's measured ÷ goal table into docs/performance.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(BENCH_WRITE_DOCS),--write-docs) $(BENCH)

kill-test: $(STAMP)
	$(BIN)/python -m benchmarks.kill_test

# Pages generated from the code (a test fails when a committed one is out of date).
docs: $(STAMP)
	$(BIN)/python -m kapso.errors_doc

# The Procfile's processes with .env; `make run PROCESSES="web worker socket"` adds Socket Mode.
PROCESSES ?= web worker
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start $(PROCESSES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache broadcasts.db*

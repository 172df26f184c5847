# qixin — two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test soak lint format typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/qixin run $(ARGS)

# the suite on TEST_JOBS pytest-xdist workers (2: this machine's cores); TEST_JOBS=0 runs it in one process
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

# the full-scale variants of the heavy tests (1,000,000-number job, 20,000-message crash test), left out of `make test`
soak: $(STAMP)
	$(BIN)/pytest -m soak $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check qixin tests bench
	$(BIN)/ruff format --check qixin tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format qixin tests bench
	$(BIN)/ruff check --fix qixin tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data

# stopnet: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export STOPNET_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: demo test lint typecheck test-sqlite test-postgres bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## demo: SQLite database, simulated STOP IV and STOP III operations, web app on http://127.0.0.1:8000
demo: $(BIN)/.installed
	$(BIN)/stopnet demo

## test: lint, type-check, the whole suite on SQLite, then the database tests again on PostgreSQL
test: lint typecheck test-sqlite test-postgres

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy

test-sqlite: $(BIN)/.installed
	STOPNET_TEST_BACKEND=sqlite $(BIN)/pytest -q

test-postgres: $(BIN)/.installed
	STOPNET_TEST_BACKEND=postgres $(BIN)/pytest -q -m db

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/import_seizures.py

clean:
	rm -rf $(VENV) stopnet.db stopnet.db-* var .pytest_cache .mypy_cache .ruff_cache

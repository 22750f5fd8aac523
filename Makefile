# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint bench bench-lanes install clean

$(BIN)/lineoa-export: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/lineoa-export

demo: install
	$(BIN)/lineoa-export demo

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/suite.py

bench-lanes: install
	$(BIN)/python bench/lanes.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

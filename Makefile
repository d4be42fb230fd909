# Two commands for a new user: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench lint format venv clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	PORT=$(PORT) bash scripts/demo.sh

# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 must be running (.ci/run starts them).
test: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: venv
	$(VENV)/bin/pytest -m "not reliability and not e2e" $(PYTEST_ARGS)

bench: venv
	$(PY) bench/run.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var staticfiles

# Two commands for a new user: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo demo-smoke test test-fast test-embedded check-migrations bench lint format venv clean

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

# The embedded default (SQLite file, filesystem broker, no Redis), as `make demo` runs it.
test-embedded: venv
	TEST_EMBEDDED=1 $(VENV)/bin/pytest tests/finance tests/sync tests/alerts tests/platform -m "not postgres" $(PYTEST_ARGS)

# Migrations apply on a fresh SQLite file and match the models.
check-migrations: venv
	rm -rf var/check-migrations
	VAR_DIR=var/check-migrations DATABASE_URL=sqlite:///var/check-migrations/db.sqlite3 $(PY) manage.py migrate --noinput -v0
	VAR_DIR=var/check-migrations DATABASE_URL=sqlite:///var/check-migrations/db.sqlite3 $(PY) manage.py makemigrations --check --dry-run

# `make demo` from this checkout, used as a finance user, then stopped (scripts/demo_smoke.py).
demo-smoke: venv
	$(PY) scripts/demo_smoke.py

test-fast: venv
	$(VENV)/bin/pytest -m "not reliability and not e2e" $(PYTEST_ARGS)

bench: venv
	$(PY) bench/run.py

# mypy reads its configuration ([tool.mypy]) from pyproject.toml; the emulator's models, which
# connect_sandbox uses, are installed only with QBO_SANDBOX_ENABLED=1.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	QBO_SANDBOX_ENABLED=1 $(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var staticfiles

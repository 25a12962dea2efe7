# Tremplin: every target creates the environment it needs from the lock file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT


.PHONY: bench-matching bench-api
.PHONY: bench-matching bench-events bench-stats clients-ts worker
.PHONY: help venv run migrate test check lint format typecheck openapi openapi-check docs docs-check alembic-check demo lock clean

help:
	@echo "make run | test | check | demo | openapi | lock | clean"

# The stamp depends on the lock: a changed lock rebuilds the environment.
$(VENV)/.stamp: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(VENV)/.stamp

# The API and, beside it, the worker (webhooks and scheduled jobs); both stop together.
run: venv
	$(BIN)/python -m app migrate
	$(BIN)/python -m app bootstrap-admin
	$(BIN)/python -m app worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/python -m app serve --host 127.0.0.1 --port $(PORT)

worker: venv
	$(BIN)/python -m app worker

migrate: venv
	$(BIN)/python -m app migrate

demo: venv
	$(BIN)/python -m app migrate
	$(BIN)/python -m app demo

test: venv clients-ts
	$(BIN)/python -m tests.run

# The pinned npm packages the TypeScript client test generates its client with.
clients-ts:
	@if command -v npm >/dev/null; then \
		npm ci --prefix clients/typescript --no-audit --no-fund --silent; \
	else echo "npm not found: the TypeScript client test will be skipped"; fi

check: venv lint typecheck openapi-check docs-check alembic-check

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

openapi: venv
	$(BIN)/python -m app openapi --output openapi.yaml

docs: venv
	$(BIN)/python -m app permissions-doc

docs-check: venv
	$(BIN)/python -m app permissions-doc --check

openapi-check: venv
	$(BIN)/python -m app openapi --check openapi.yaml

# Runs `alembic check` against a throwaway SQLite database migrated to head.
alembic-check: venv
	$(BIN)/python -m app alembic-check

lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock
	$(PYTHON) -m uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements-prod.lock

# Webhook delivery by one worker to a local receiver, on PostgreSQL (EVENTS=n to size it).
bench-events: venv
	$(BIN)/python benchmarks/events.py

# Matching at national scale on PostgreSQL (a database of its own, dropped after).
bench-matching: venv
	$(BIN)/python benchmarks/matching.py

# Authenticated reads against a Starlette + raw driver reference and a bare read, on
# PostgreSQL and SQLite; wrk (Debian's package) is installed when missing.
bench-api: venv
	@command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk))
	$(BIN)/python benchmarks/api.py
# The figures at national scale on PostgreSQL (a database of its own, dropped after).
bench-stats: venv
	$(BIN)/python benchmarks/stats.py

clean:
	rm -rf $(VENV) var/*.db var/*.db-* .pytest_cache .mypy_cache .ruff_cache

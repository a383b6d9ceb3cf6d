# Two commands for a newcomer: `make run` serves on SQLite with no setup, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install dev run migrate test test-cluster galera galera-stop lint bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs come from the lockfiles (exact versions, sha256 hashes), so every machine and CI run
# what was tested; then the project itself, without touching its pinned dependencies. The
# stamps reinstall when a lockfile or pyproject.toml changes. `make lock` refreshes the locks.
INSTALL_LOCKED = $(BIN)/python -m pip install --quiet --require-hashes -r
INSTALL_SELF = $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

$(VENV)/.installed: pyproject.toml requirements/main.lock | $(BIN)/python
	$(INSTALL_LOCKED) requirements/main.lock
	$(INSTALL_SELF)
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements/dev.lock | $(BIN)/python
	$(INSTALL_LOCKED) requirements/dev.lock
	$(INSTALL_SELF)
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml requirements/bench.lock | $(BIN)/python
	$(INSTALL_LOCKED) requirements/bench.lock
	$(INSTALL_SELF)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

# pip-tools resolves pyproject.toml (its extras dev and bench) to exact versions with hashes, for
# this Python and platform. dev is constrained by main and bench by dev, so any mix of the three
# installs the same version of every package they share. pip-tools runs from a venv of its own.
LOCK_TOOLS := .venv-lock
PIP_COMPILE = $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links --build-deps-for editable
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || \
		{ $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet 'pip-tools>=7.4'; }
	$(PIP_COMPILE) --upgrade -o requirements/main.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --extra dev -c requirements/main.lock -o requirements/dev.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --extra bench -c requirements/dev.lock -o requirements/bench.lock pyproject.toml

migrate: install
	$(BIN)/alembic upgrade head

# python -m app.serve: JSON logs, a fresh metrics directory for the workers, the header bounds
# (README, "Running it in production").
run: migrate
	$(BIN)/python -m app.serve --host $(HOST) --port $(PORT)

# tests/cluster needs the Galera cluster (`make galera`); `make test-cluster` runs it.
# TEST_PROCESSES pytest-xdist workers share the tests (each makes its own databases): most tests
# wait on MariaDB, subprocesses or timers, so two halve the time even on two cores.
TEST_PROCESSES ?= 2
test: dev
	$(BIN)/pytest --ignore=tests/cluster --numprocesses $(TEST_PROCESSES)

# Three MariaDB Galera nodes on 127.0.0.1:3311-3313 (.ci/galera.sh); `galera` is idempotent,
# `galera-stop` stops the nodes and removes their data.
galera:
	.ci/galera.sh start

galera-stop:
	.ci/galera.sh stop

test-cluster: dev
	$(BIN)/pytest tests/cluster

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Our service against the tutorial's Flask app; writes docs/benchmarks.md (see bench/run.py).
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) .pytest_cache .mypy_cache .ruff_cache app.db app.db-wal app.db-shm

# Two commands do everything: `make run` and `make test`. See README.md.
# `make dev` serves with Django's autoreloader instead; `make manage ARGS="create_org acme"` runs
# any manage.py command in the virtualenv with the environment `make run` uses.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Parallel workers for pytest (xdist). `make test WORKERS=0` runs in one process. Three on two
# cores: a quarter of the suite's time is spent waiting on live servers, subprocesses and the
# browser, and a third worker fills it (SQLite pass 275 s -> 210 s here).
WORKERS ?= 3

.PHONY: run dev manage test venv migrate seed lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

migrate: venv
	mkdir -p var/staticfiles
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo $(SEED_ARGS)

# The demo logins are printed by the server, once, beside the address it really serves.
run: migrate
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo --no-logins $(SEED_ARGS)
	DEBUG=$${DEBUG:-1} $(PY) manage.py serve $(HOST):$(PORT)

dev: migrate
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo --no-logins $(SEED_ARGS)
	DEBUG=$${DEBUG:-1} $(PY) manage.py devserver $(HOST):$(PORT)

# Silent, so `KEY=$$(make manage ARGS="create_api_key acme support" | tail -1)` captures the key.
manage: venv
	@DEBUG=$${DEBUG:-1} $(PY) manage.py $(ARGS)

# PYTHONDONTWRITEBYTECODE is cleared for the run: pytest keeps its assertion-rewritten modules
# (the tests and its plugins' packages, about 800) as cached bytecode, and with the variable set
# it rewrites all of them again in every worker of every run (about 20 s of CPU each).
test: venv
	mkdir -p var/staticfiles
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadgroup) $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache

# `make run` serves the app locally; `make test` runs every test. Both install what is missing.
# `make test-fast` runs the tests that need no Azurite (half a minute); `make bench` the benchmarks.
PYTHON ?= python3
VENV := .venv
# checkov checks infra/ (tests/test_infra.py); its pins conflict with the app's, so it has a virtualenv of its own.
VENV_INFRA := .venv-infra
PY := $(VENV)/bin/python
# Some images (this development machine's, CI's) set PYTHONDONTWRITEBYTECODE: then every process compiles the
# project from source and pytest rewrites every test module again in each worker, a quarter of `make test`'s CPU.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help run test test-fast bench deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'


deps: $(VENV)/.installed $(VENV_INFRA)/.installed node_modules/.installed  ## install what is missing (.venv, .venv-infra, Azurite)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV_INFRA)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(VENV_INFRA)
	$(VENV_INFRA)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

node_modules/.installed: package.json package-lock.json $(wildcard patches/*.patch)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Local host processes running the queue triggers: `make run WORKERS=2` starts one more beside the main one
# (HTTP, timers, queues), so two share each queue as two instances of the Function App do.
WORKERS ?= 1

run: deps  ## Azurite, the ADF stand-in, a mail catcher, the app on :7071 (WORKERS=2: queues in 2 processes)
	$(PY) -m local_dev.run --workers $(WORKERS)

# Three workers on two cores: most of a test's time is spent waiting on Azurite, the stand-ins or
# Chromium, so a third worker keeps both cores busy (each worker starts its own of each).
TEST_WORKERS ?= 3

test: deps  ## the import layers, then every test (Azurite, stand-ins, Chromium) in parallel; pytest prints the time
	PYTHONPATH=. $(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n $(TEST_WORKERS)

test-fast: $(VENV)/.installed  ## the tests that need no Azurite, in half a minute
	$(PY) -m pytest -m "not integration" -n 2

bench: deps  ## the benchmarks (ARGS=--help for options)
	$(PY) -m benchmarks.run $(ARGS)

clean:  ## remove .venv, .venv-infra, node_modules, local data and compiled bytecode
	rm -rf $(VENV) $(VENV_INFRA) node_modules .azurite .pytest_cache test-output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

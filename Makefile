# `make run` serves the app locally; `make test` runs every test. Both install what is missing.
# `make test-fast` runs the tests that need no Azurite (seconds); `make bench` the benchmarks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast bench deps clean

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: deps
	$(PY) -m local_dev.run

test: deps
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not integration"

bench: deps
	$(PY) -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache test-output

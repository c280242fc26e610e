# Sidelight developer targets. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup demo test lint typecheck protos-check test-unit test-contract test-e2e bench binaries browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,operator]'
	touch $@

demo: setup
	$(VENV)/bin/sidelight demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

protos-check: setup
	$(PY) -m pytest tests/contract/test_proto_drift.py -q

test-unit: setup browser
	$(PY) -m pytest tests/sidecar tests/operator tests/cli tests/fake_provider -q

test-contract: setup
	$(PY) -m pytest tests/contract -q

# The usage page's browser test drives Debian's chromium with playwright
# (playwright's own browser download is not reachable here; needs root for apt).
browser:
	command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

binaries:
	e2e/build-binaries

test-e2e: setup binaries
	$(PY) -m pytest e2e -q

test: lint typecheck test-unit test-contract test-e2e

bench: setup
	$(PY) bench/proxy_bench.py

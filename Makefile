# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: test lint typecheck unit demo bench bench-replay chromium clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## chromium: Debian's Chromium, for the dashboard rendering test
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## test: lint, type-check and run the whole test suite (sets everything up on a fresh machine)
test: lint typecheck unit

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP) $(NODE_STAMP) chromium
	$(PY) -m pytest

## demo: simulate a day of APIM traffic, replay it into the local store, print KPIs, write the dashboard
demo: $(STAMP)
	rm -f .local/demo.duckdb
	$(PY) -m ingest simulate --out .local/sim --hours 24 --rate 5
	$(PY) -m ingest replay .local/sim/events.jsonl --db .local/demo.duckdb
	$(PY) -m ingest report --db .local/demo.duckdb --html .local/dashboard.html

## bench: the core's throughput against a bare orjson parse of the same bodies
bench: $(STAMP)
	$(PY) benchmarks/bench_core.py

## bench-replay: replay a generated corpus of 1 million records into the local store
bench-replay: $(STAMP)
	$(PY) benchmarks/bench_replay.py

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed
NATIVE_STAMP := .native/ingest/SOURCES
NATIVE_SOURCES := $(wildcard ingest/*.py)

.PHONY: test lint typecheck unit demo bench bench-replay native chromium clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## native: compile the core's hot path with mypyc (.native/; used only while it matches the sources)
native: $(NATIVE_STAMP)

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES) tools/build_native.py
	$(PY) tools/build_native.py

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

unit: $(STAMP) $(NODE_STAMP) $(NATIVE_STAMP) chromium
	INGEST_EXPECT_CORE="compiled (mypyc)" $(PY) -m pytest
	INGEST_PURE=1 INGEST_EXPECT_CORE="pure Python" $(PY) -m pytest -q tests/unit

## demo: simulate a day of APIM traffic, replay it into the local store, print KPIs, write the dashboard
demo: $(STAMP) $(NATIVE_STAMP)
	rm -f .local/demo.duckdb
	$(PY) -m ingest simulate --out .local/sim --hours 24 --rate 5
	$(PY) -m ingest replay .local/sim/events.jsonl --db .local/demo.duckdb
	$(PY) -m ingest report --db .local/demo.duckdb --html .local/dashboard.html

## bench: the core's throughput against a bare orjson parse of the same bodies
bench: $(STAMP) $(NATIVE_STAMP)
	$(PY) benchmarks/bench_core.py

## bench-replay: replay a generated corpus of 1 million records into the local store
bench-replay: $(STAMP) $(NATIVE_STAMP)
	$(PY) benchmarks/bench_replay.py

clean:
	rm -rf $(VENV) node_modules .native .mypy_cache .ruff_cache .pytest_cache .hypothesis

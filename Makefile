# The README's two commands, `make demo` and `make test`, set themselves up on a fresh machine.
# `make check` is the fast loop: lint, types, unit and contract tests (no service, no browser).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
UV_COMPILE := $(PY) -m uv pip compile --quiet --generate-hashes --python-version 3.11 --universal
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: check test lint typecheck unit integration infra e2e lock demo bench bench-replay bench-batch bench-day bench-memory chromium clean

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements-infra.txt
	touch $(INFRA_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## chromium: Debian's Chromium, for the dashboard test (only `make e2e` needs it)
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## check: lint, types, unit and contract tests (seconds; no network, no service, no browser)
check: lint typecheck unit

## test: everything, what CI runs (check, the tests that start local services, the templates'
## scan, and the browser)
test: check integration infra e2e

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "unit or contract" -p no:cacheprovider

integration: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q -m integration -p no:cacheprovider

## infra: the Bicep templates offline: tree-sitter parse, checkov (its own venv), project checks
infra: $(STAMP) $(INFRA_STAMP)
	CHECKOV=$(INFRA_VENV)/bin/checkov $(PY) -m pytest -q -m infra -p no:cacheprovider

e2e: $(STAMP) $(NODE_STAMP) chromium
	$(PY) -m pytest -q -m e2e -p no:cacheprovider

## lock: re-pin requirements.txt (the Functions app) and requirements-dev.txt from pyproject.toml
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml -o requirements.txt
	$(UV_COMPILE) pyproject.toml --extra local --extra dev -o requirements-dev.txt
	$(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['infra'], sep='\n')" \
	  | $(UV_COMPILE) - -o requirements-infra.txt

## demo: simulate a day of APIM traffic, replay it into the local store, load the sample teams,
## budgets and quotas, print KPIs, write the dashboard and the month's chargeback lines
demo: $(STAMP) $(NODE_STAMP)
	rm -f .local/demo.duckdb
	$(PY) -m ingest simulate --out .local/sim --hours 24 --rate 5
	$(PY) -m ingest replay .local/sim/events.jsonl --db .local/demo.duckdb
	for kind in teams budgets capacity; do \
	  $(PY) -m ingest reference load $$kind kusto/reference/$$kind.sample.csv --db .local/demo.duckdb || exit 1; \
	done
	$(PY) -m ingest report --db .local/demo.duckdb --html .local/dashboard.html \
	  --month 2025-10 --csv .local/chargeback-2025-10.csv

## bench: the core's throughput against a bare orjson parse of the same bodies
bench: $(STAMP)
	$(PY) benchmarks/bench_core.py

## bench-replay: replay a generated corpus of 1 million records into the local store
bench-replay: $(STAMP)
	$(PY) benchmarks/bench_replay.py

## bench-batch: the Functions batch path (real AdxSink, Azurite, local DM endpoint) per capture mode
## and batch size: events/s, MB/s, rows/s, peak memory per worker (about 3 minutes)
bench-batch: $(STAMP) $(NODE_STAMP)
	$(PY) benchmarks/bench_batch_path.py

## bench-memory: peak memory of the worst cases: host.json's largest trigger batch of 1 MB events
## through the ADX sink's encoding, and record bombs (two to four minutes; needs ~0.5 GB free memory)
bench-memory: $(STAMP)
	$(PY) benchmarks/bench_memory.py

## bench-day: a simulated day at 10x and 100x the demo's traffic with a 10-minute ADX outage
## (tens of minutes; `$(PY) benchmarks/bench_day.py --hours 2` for a shorter day)
bench-day: $(STAMP) $(NODE_STAMP)
	$(PY) benchmarks/bench_day.py

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis

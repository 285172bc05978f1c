"""Shared helpers: fixture loading and a pipeline with the golden settings."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ingest.config import CaptureMode, CoreSettings
from ingest.core.pipeline import Pipeline
from ingest.model import BatchResult
from ingest.sources import iter_events

pytest_plugins = ["tests.adx_world"]
"""Fixtures of the ADX world (Azurite started once per module that asks for it)."""

ROOT = Path(__file__).resolve().parent.parent
"""The project root (where `python -m ingest` runs)."""
FIXTURES = ROOT / "tests" / "fixtures"

APP_ENV = {
    "ADX_CLUSTER_URI": "https://contoso.westeurope.kusto.windows.net",
    "ADX_DATABASE": "apimlogs",
    "EventHubConnection__fullyQualifiedNamespace": "contoso-apim.servicebus.windows.net",
    "EVENTHUB_NAME": "apim-logs",
    "EVENTHUB_CONSUMER_GROUP": "apim-adx",
    "AzureWebJobsStorage__accountName": "contosofuncs",
}
"""A complete, valid set of the Functions app's settings (fake resource names)."""
APIM = FIXTURES / "apim"
EXPECTED = FIXTURES / "expected"


def fixture_path(case: str) -> Path:
    """The input file of a golden case (any extension)."""
    matches = sorted(APIM.glob(f"{case}.*"))
    assert len(matches) == 1, f"expected one input for `{case}`, found {matches}"
    return matches[0]


def run_ingest(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """``python -m ingest ARGS`` in the project root; fails the test unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


@contextmanager
def serving(db: Path) -> Iterator[tuple[str, str]]:
    """``python -m ingest serve`` on a free port for the store at ``db``: (database, url)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "ingest", "serve", "--db", str(db), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        m = re.search(r"database `(\w+)` at (http://\S+)", line)
        assert m, line + (
            server.stderr.read() if server.poll() is not None and server.stderr else ""
        )
        yield m.group(1), m.group(2)
    finally:
        server.terminate()
        server.wait(timeout=10)


def load_fixture(case: str) -> bytes:
    """Raw bytes of a golden case's input."""
    return fixture_path(case).read_bytes()


def load_expected(case: str) -> dict[str, Any]:
    """The hand-written expectation of a golden case."""
    doc: dict[str, Any] = json.loads((EXPECTED / f"{case}.rows.json").read_text(encoding="utf-8"))
    return doc


def golden_settings(**overrides: Any) -> CoreSettings:
    """Settings the golden files were written for: redacted text capture, estimates on."""
    values: dict[str, Any] = {"capture_text": CaptureMode.REDACTED}
    values.update(overrides)
    return CoreSettings(**values)


def run_case(case: str, settings: CoreSettings | None = None) -> BatchResult:
    """Flatten a golden case's input the way the CLI does."""
    pipeline = Pipeline(settings or golden_settings())
    return pipeline.process(iter_events(str(fixture_path(case))))


FOLDER_MARKERS = {"unit": "unit", "contract": "contract"}
"""Tests in these folders get the marker without saying so; integration, e2e and infra test
files declare theirs (``pytestmark``), and a test checks that they do."""


def teams_during(
    teams: list[dict[str, Any]], subscription: str, start: dt.datetime, end: dt.datetime
) -> set[str]:
    """The teams that Teams rows (as the store returns them) bill a subscription's calls to from
    ``start`` to ``end``, by TeamCalls' rule worked out again: each row from its EffectiveFrom (the
    subscription's earliest row: from the beginning) until the subscription's next row."""
    rows = sorted(
        (t for t in teams if t["SubscriptionId"] == subscription),
        key=lambda t: t["EffectiveFrom"] or dt.datetime.min,
    )
    starts = [dt.datetime.min, *(r["EffectiveFrom"] for r in rows[1:])]
    ends = [*starts[1:], dt.datetime.max]
    return {r["Team"] for r, a, b in zip(rows, starts, ends, strict=True) if a < end and b > start}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every unit and contract test by its folder (``make check`` selects them)."""
    for item in items:
        parts = item.path.relative_to(ROOT).parts
        declared = any(m.name in ("integration", "e2e", "infra") for m in item.iter_markers())
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in FOLDER_MARKERS and not declared:
            item.add_marker(FOLDER_MARKERS[parts[1]])


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    return Pipeline(golden_settings())

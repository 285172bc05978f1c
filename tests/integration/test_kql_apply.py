"""``kusto apply``: the real azure-kusto-data client against a local endpoint recording the wire."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.kql.apply import apply_statements
from ingest.kql.scripts import load_statements
from ingest.sinks import adx
from tests.conftest import run_ingest
from tests.kusto_endpoint import error_reply, kusto_endpoint, table_reply

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class StaticCredential:
    """An azure-core TokenCredential that hands out a fixed, fake token."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("not-a-real-token", int(time.time()) + 3600)


def test_apply_sends_every_statement_in_order_with_the_credential() -> None:
    statements = load_statements()
    lines: list[str] = []
    with kusto_endpoint() as endpoint:
        client = adx.connect(endpoint.url, StaticCredential())
        applied = apply_statements(client, "apimlogs", statements, lines.append)
    assert endpoint.commands == [s.text for s in statements]
    assert len(applied) == len(statements) == len(lines)
    mgmt = [r for r in endpoint.requests if r.path == "/v1/rest/mgmt"]
    assert {r.body["db"] for r in mgmt} == {"apimlogs"}
    assert {r.headers["Authorization"] for r in mgmt} == {"Bearer not-a-real-token"}
    assert lines[0].startswith("ok    kusto/10_tables.kql:3 `.create-merge table ApimLogsLanding (")


def test_apply_stops_at_the_first_permanent_error_and_names_the_statement() -> None:
    statements = load_statements()
    failing = statements[4]

    def answer(request):  # type: ignore[no-untyped-def]
        if request.body["csl"] == failing.text:
            return error_reply(
                400,
                "BadRequest_SemanticError",
                "Semantic error: column 'x' not found",
                permanent=True,
            )
        return table_reply([("Result", "string")], [["ok"]])

    with kusto_endpoint() as endpoint:
        endpoint.answer = answer
        client = adx.connect(endpoint.url, StaticCredential())
        with pytest.raises(TerminalIngestError) as caught:
            apply_statements(client, "apimlogs", statements, lambda _: None)
    assert endpoint.commands == [s.text for s in statements[:5]]
    assert f"kusto/{failing.file}:{failing.line}" in str(caught.value)
    assert "column 'x' not found" in str(caught.value)


def test_throttling_is_transient() -> None:
    with kusto_endpoint() as endpoint:
        endpoint.answer = lambda _: error_reply(
            429, "TooManyRequests", "Request is throttled", permanent=False
        )
        client = adx.connect(endpoint.url, StaticCredential())
        with pytest.raises(TransientIngestError, match="throttled"):
            apply_statements(client, "apimlogs", load_statements()[:1], lambda _: None)


def test_the_command_line_applies_and_reports() -> None:
    with kusto_endpoint() as endpoint:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ingest",
                "kusto",
                "apply",
                "--cluster",
                endpoint.url,
                "--database",
                "db",
                "--no-auth",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    statements = load_statements()
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[-1]
        == f"apply: {len(statements)} of {len(statements)} statements applied to db"
    )
    assert endpoint.commands == [s.text for s in statements]
    assert "Authorization" not in endpoint.requests[-1].headers


def test_seed_runs_the_files_no_script_resource_can_whole() -> None:
    # A database script resource refuses `.set-or-append`: the price list's file is left to
    # `kusto seed` (azd's postprovision hook), policies included, or its rows age out with the
    # database's default retention.
    with kusto_endpoint() as endpoint:
        run_ingest("kusto", "seed", "--cluster", endpoint.url, "--database", "db", "--no-auth")
    prices = [s.text for s in load_statements() if s.file == "70_prices.kql"]
    assert endpoint.commands == prices
    assert any("policy retention softdelete = 36500d" in c for c in prices)
    assert any(c.startswith(".set-or-append ModelPrices") for c in prices)

"""``reference load``: the ADX command through Microsoft's language service and duckdb-kql, sent by
the real client to a local endpoint recording the wire, and loaded into a local store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.commands.reference import REFERENCES, read_csv, set_or_replace
from ingest.kql.scripts import KUSTO_DIR, Statement, load_statements
from ingest.kql.validate import validate
from ingest.sinks.local import kql
from ingest.sinks.local.store import LocalSink
from tests.conftest import ROOT, run_ingest
from tests.kusto_endpoint import error_reply, kusto_endpoint

pytestmark = pytest.mark.integration

SAMPLES = {kind: KUSTO_DIR / "reference" / f"{kind}.sample.csv" for kind in REFERENCES}

AWKWARD = (
    "SubscriptionId,Team,CostCentre\n"
    'sub-1,"Research ""Labs"", Paris",C:\\costs\\ai\n'
    "sub-2,Équipe données ✓,\n"
)
"""Text a literal must escape: quotes, a comma, backslashes, accents, a symbol; an empty value."""


def _command(kind: str, path: Path) -> str:
    reference = REFERENCES[kind]
    return set_or_replace(reference, read_csv(reference, path))


def test_the_commands_pass_the_language_service(tmp_path: Path) -> None:
    awkward = tmp_path / "teams.csv"
    awkward.write_text(AWKWARD, encoding="utf-8")
    commands = [_command(kind, path) for kind, path in SAMPLES.items()]
    commands.append(_command("teams", awkward))
    statements = [Statement("reference", i, text) for i, text in enumerate(commands, start=1)]
    errors, _ = validate([*load_statements(), *statements])
    assert [str(e) for e in errors] == []


def test_the_literals_read_back_as_the_file_says(tmp_path: Path) -> None:
    awkward = tmp_path / "teams.csv"
    awkward.write_text(AWKWARD, encoding="utf-8")
    con = kql.connect()
    for kind, path in [*SAMPLES.items(), ("teams", awkward)]:
        reference = REFERENCES[kind]
        rows = read_csv(reference, path)
        query = set_or_replace(reference, rows).split("<|\n", 1)[1]
        assert kql.query(con, query) == rows, kind


def test_the_command_line_loads_adx_with_one_command(tmp_path: Path) -> None:
    with kusto_endpoint() as endpoint:
        done = run_ingest(
            "reference",
            "load",
            "budgets",
            str(SAMPLES["budgets"]),
            "--cluster",
            endpoint.url,
            "--database",
            "finance",
            "--no-auth",
        )
    assert endpoint.commands == [_command("budgets", SAMPLES["budgets"])]
    (mgmt,) = [r for r in endpoint.requests if r.path == "/v1/rest/mgmt"]
    assert mgmt.body["db"] == "finance"
    assert "Authorization" not in mgmt.headers
    rows = len(read_csv(REFERENCES["budgets"], SAMPLES["budgets"]))
    assert f"Budgets in finance replaced by the {rows} rows" in done.stdout


def test_a_refused_command_names_the_file_and_the_table() -> None:
    with kusto_endpoint() as endpoint:
        endpoint.answer = lambda _: error_reply(
            403, "Forbidden", "Principal is not authorized to ingest", permanent=True
        )
        command = ["reference", "load", "teams", str(SAMPLES["teams"]), "--cluster", endpoint.url]
        done = subprocess.run(
            [sys.executable, "-m", "ingest", *command, "--database", "db", "--no-auth"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 1
    assert "teams.sample.csv into Teams failed" in done.stderr
    assert "not authorized" in done.stderr


def test_the_command_line_replaces_a_local_table(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    LocalSink(db).close()
    first = tmp_path / "first.csv"
    first.write_text("SubscriptionId,Team\nsub-old,Old team\n", encoding="utf-8")
    run_ingest("reference", "load", "teams", str(first), "--db", str(db))
    for _ in range(2):  # loading the same file again changes nothing
        run_ingest("reference", "load", "teams", str(SAMPLES["teams"]), "--db", str(db))
        store = LocalSink(db)
        rows = store.query("Teams")
        store.close()
        assert sorted(rows, key=str) == sorted(
            read_csv(REFERENCES["teams"], SAMPLES["teams"]), key=str
        )  # two rows of one subscription: any order

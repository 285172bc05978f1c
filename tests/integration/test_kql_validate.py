"""Every statement of kusto/ through Microsoft's Kusto language service (tools/kql_validate.js)."""

from __future__ import annotations

import pytest

from ingest.kql.scripts import Statement, database_script, load_statements, unapplied_statements
from ingest.kql.validate import validate

pytestmark = pytest.mark.integration


def test_the_scripts_have_no_errors() -> None:
    errors, checked = validate()
    assert [str(e) for e in errors] == []
    # The applied scripts, the runbook, the alert queries and the optional streaming policy.
    unapplied = unapplied_statements()
    assert {s.file for s in unapplied} == {"runbook.kql", "alerts.kql", "optional/streaming.kql"}
    assert checked["statements"] == len(load_statements()) + len(unapplied)
    assert checked["policies"] == 3


def test_the_database_script_is_one_valid_command() -> None:
    # The language service parses `.execute database script` and analyses every command in it.
    script = Statement("database_script", 1, database_script())
    errors, _ = validate([*load_statements(), script])
    assert [str(e) for e in errors] == []
    broken = Statement("database_script", 1, database_script().replace("LlmUsageDedup", "Nope"))
    errors, _ = validate([*load_statements(), broken])
    assert errors
    assert all(e.file == "database_script" for e in errors)


def test_the_validator_catches_what_the_parser_lets_through() -> None:
    broken = [
        Statement("broken.kql", 1, ".frobnicate table LlmUsage"),
        Statement(
            "broken.kql",
            3,
            '.create-or-alter function with (folder = "x", docstring = "y") Broken() '
            "{ ApimLogsLanding | where NoSuchColumn > 1 }",
        ),
        Statement("broken.kql", 5, "NoSuchTable | take 1"),
        Statement(
            "broken.kql",
            7,
            ".alter table LlmMessages policy update @'[{"
            '"IsEnabled": true, "Source": "ApimLogsLanding", '
            '"Query": "ApimLogsLanding | project RecordId, Timestamp", "IsTransactional": true}]\'',
        ),
    ]
    statements = [
        s
        for s in load_statements()
        if not s.text.startswith(".alter table LlmMessages policy update")
    ]
    errors, _ = validate(statements + broken)
    messages = {e.line: e.message for e in errors if e.file == "broken.kql"}
    assert messages[1] == "unknown command: .frobnicate table LlmUsage"
    assert "NoSuchColumn" in messages[3]
    assert "NoSuchTable" in messages[5]
    assert messages[7].startswith(
        "update policy of LlmMessages returns (RecordId:string, Timestamp:datetime"
    )
    assert len(errors) == 4


def test_the_local_equivalents_are_valid_kql_too() -> None:
    from ingest.kql.scripts import local_statements, views

    local = list(local_statements())
    local_views = {v.statement for v in views(local).values()}
    assert len(local_views) == 2
    # The local dedup views take the place of the production ones of the same name.
    replaced = {name: v.statement for name, v in views(local).items()}
    production = {v.statement: name for name, v in views(load_statements()).items()}
    statements = [replaced.get(production.get(s, ""), s) for s in load_statements()]
    others = [s for s in local if s not in local_views]
    errors, _ = validate(statements + others)
    assert [str(e) for e in errors] == []


def test_every_dashboard_tile_query_is_valid_kql() -> None:
    from ingest.kql.dashboard import TILES, with_time_range
    from ingest.kql.validate import result_columns

    queries = [
        with_time_range(t.query, "datetime(2024-09-01)", "datetime(2024-11-01)") for t in TILES
    ]
    columns = result_columns(queries)
    assert [q for q, cols in columns.items() if not cols] == []

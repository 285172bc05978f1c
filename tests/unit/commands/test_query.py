"""Query errors in the user's terms, and the three output formats."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ingest.commands.query import explain, render
from ingest.sinks.local.kql import NOT_BUILT_LOCALLY

TABLES = ["ApimRequests", "LlmUsage", "LlmUsageDedup", "ModelPrices"]
FUNCTIONS = ["LlmCalls", "UsageAndCost", "TopCallers"]


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (
            "unsupported KQL construct 'function:LlmCall' at 1:0 (no DuckDB mapping for a "
            "built-in of that name in this wave (see translate/functions.py), ...)",
            "unknown function `LlmCall()`; did you mean `LlmCalls()`",
        ),
        (
            "unsupported KQL construct 'aggregate:summ' (no DuckDB mapping in this wave; see "
            "translate/functions.py)",
            "unknown aggregation `summ()`; did you mean `sum`",
        ),
        (
            'Catalog Error: Table with name LlmUsag does not exist!\nDid you mean "pg_tables"?',
            "unknown table `LlmUsag`; did you mean `LlmUsage`",
        ),
        (
            'Binder Error: Referenced column "ResponseCod" not found in FROM clause!\n'
            'Candidate bindings: "ResponseCode", "ResponseSize"',
            "unknown column `ResponseCod`; did you mean `ResponseCode`",
        ),
        (
            "could not parse KQL at 1:9: mismatched input '|' expecting {<EOF>, ';'}",
            "syntax error at line 1, column 10: mismatched input '|'",
        ),
    ],
)
def test_errors_name_the_problem_in_the_users_terms(message: str, said: str) -> None:
    explained = explain(message, TABLES, FUNCTIONS)
    assert explained.startswith(said)
    assert "translate/functions.py" not in explained
    assert "pg_tables" not in explained


def test_an_error_with_nothing_close_suggests_nothing() -> None:
    said = explain("Catalog Error: Table with name Zzzz does not exist!", TABLES, FUNCTIONS)
    assert said == "unknown table `Zzzz`"


@pytest.mark.parametrize(
    "message",
    [
        'Binder Error: Column "ResponseCod" referenced that exists in the SELECT clause - but '
        "this column cannot be referenced before it is defined",
        'Binder Error: Alias with name "ResponseCod" exists, but aliases cannot be used as part '
        "of an expression in the GROUP BY",
    ],
)
def test_a_column_named_as_an_alias_too_is_unknown_with_the_closest_columns(message: str) -> None:
    columns = ["ResponseCode", "ResponseSize", "RequestId"]
    said = explain(message, TABLES, FUNCTIONS, columns=columns)
    assert said == "unknown column `ResponseCod`; did you mean `ResponseCode` or `ResponseSize`?"


def test_a_view_the_local_store_does_not_build_is_named_with_its_reason() -> None:
    message = "Catalog Error: Table with name RequestHealthHourly does not exist!"
    said = explain(message, [*TABLES, "RequestHealthHourly"], FUNCTIONS, NOT_BUILT_LOCALLY)
    assert said == (
        "`RequestHealthHourly` is not built in the local store: "
        + NOT_BUILT_LOCALLY["RequestHealthHourly"]
    )
    assert explain(message, [*TABLES, "RequestHealthHourly"], FUNCTIONS).startswith(
        "unknown table `RequestHealthHourly`"
    )


def test_rows_render_as_table_json_and_csv() -> None:
    rows = [
        {"Model": "gpt-4o", "Calls": 1200, "Cost": 1.5},
        {"Model": "o3", "Calls": 3, "Cost": None},
    ]
    table = render(rows, "table").decode().splitlines()
    assert table[0].split() == ["Model", "Calls", "Cost"]
    assert table[1].split() == ["gpt-4o", "1,200", "1.5000"]
    assert json.loads(render(rows, "json")) == rows
    assert list(csv.DictReader(io.StringIO(render(rows, "csv").decode()))) == [
        {"Model": "gpt-4o", "Calls": "1200", "Cost": "1.5"},
        {"Model": "o3", "Calls": "3", "Cost": ""},
    ]
    assert render([], "table") == b"(no rows)\n"

"""Apply the ``kusto/`` scripts to a database, statement by statement (``kusto apply``/``seed``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from azure.kusto.data.exceptions import KustoError

from ingest.kql.scripts import Statement
from ingest.sinks.adx import classify, error_message


@dataclass(frozen=True, slots=True)
class Applied:
    """One statement that ADX accepted."""

    statement: Statement
    rows: int


def apply_statements(
    client: Any,
    database: str,
    statements: Iterable[Statement],
    report: Callable[[str], None],
) -> list[Applied]:
    """Run statements in order; stop at the first failure with the failing statement named.

    Raises TerminalIngestError for an error ADX calls permanent (syntax, semantics, permissions)
    and TransientIngestError otherwise (throttling, timeouts, network): running again is safe,
    since every statement is idempotent.
    """
    applied = []
    for statement in statements:
        rows = execute(client, database, statement.text, statement.describe())
        applied.append(Applied(statement, rows))
        report(f"ok    {statement.describe()}")
    return applied


def execute(client: Any, database: str, command: str, what: str) -> int:
    """Run one management command; returns the rows of its result.

    ``what`` names the command in the error: TerminalIngestError for an error ADX calls
    permanent, TransientIngestError otherwise (as ``apply_statements``).
    """
    try:
        response = client.execute_mgmt(database, command)
    except KustoError as exc:
        raise classify(exc)(f"{what} failed: {error_message(exc)}") from exc
    return len(response.primary_results[0].raw_rows) if response.primary_results else 0

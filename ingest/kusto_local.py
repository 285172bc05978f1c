"""Run the ``kusto/`` KQL locally: DuckDB tables from ``schemas/``, KQL through ``duckdb-kql``.

This is where every local stand-in for an ADX feature lives (one place, as issue #3 asks):

* ``materialized_view("V")`` reads a local table ``V`` that ``refresh_views`` rebuilds from the
  view's source: dedup views (``take_any(*) by RecordId``) become
  ``arg_max(Timestamp, *) by RecordId``, which keeps the same row when duplicates are identical,
  as replays are.
* ``tdigest`` / ``percentiles`` are not run locally (duckdb-kql has no mapping); the request-health
  view is production-only and its latency percentiles are checked in ADX.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb
import duckdb_kql

from ingest.kusto import TABLES, functions, load_statements
from ingest.schema import load_table

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "long": "BIGINT",
    "real": "DOUBLE",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "timespan": "INTERVAL",
    "dynamic": "JSON",
}
"""How each ADX column type is stored locally."""

LOCAL_DEDUP_VIEWS = {"LlmUsageDedup": "LlmUsage", "ApimRequestsDedup": "ApimRequests"}
"""Dedup materialized views and their source tables."""

_MATERIALIZED_VIEW = re.compile(r"""materialized_view\(\s*["'](\w+)["']\s*\)""")


def local_kql(body: str) -> str:
    """A KQL body with its production-only constructs replaced by their local equivalents."""
    return _MATERIALIZED_VIEW.sub(r"\1", body)


def connect(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every table of the scripts and their stored functions."""
    con: duckdb.DuckDBPyConnection = duckdb_kql.connect(path)
    for name in (*TABLES, *LOCAL_DEDUP_VIEWS):
        schema = load_table(LOCAL_DEDUP_VIEWS.get(name, name))
        columns = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in schema.columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({columns})')
    statements = load_statements()
    declared = functions(statements)
    duckdb_kql.set_functions([local_kql(f.declaration()) for f in declared.values()])
    for statement in statements:
        if statement.text.startswith(".set-or-append"):  # seed data (idempotent by design)
            duckdb_kql.script(con, statement.text)
    return con


def _value(value: Any, kind: str) -> Any:
    if value is None or kind != "datetime":
        return value
    return datetime.fromisoformat(str(value).rstrip("Z")[:26])


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Append rows (dicts keyed by column name) to a local table; returns how many."""
    schema = load_table(LOCAL_DEDUP_VIEWS.get(table, table))
    names = [c.name for c in schema.columns]
    values = [[_value(row.get(c.name), c.type) for c in schema.columns] for row in rows]
    if values:
        placeholders = ", ".join("?" for _ in names)
        quoted = ", ".join(f'"{n}"' for n in names)
        con.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({placeholders})', values)
    return len(values)


def query(con: duckdb.DuckDBPyConnection, kql: str) -> list[dict[str, Any]]:
    """Run KQL and return row dicts."""
    relation = duckdb_kql.query(con, local_kql(kql))
    columns = relation.columns
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


def apply_update_policies(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Run the update policies on the landing table, then empty it (retention 0): one transaction.

    Returns the rows appended per target table.
    """
    from ingest.kusto import update_policies

    policies = update_policies(load_statements())
    appended = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, entries in policies.items():
            for entry in entries:
                rows = query(con, str(entry["Query"]))
                appended[table] = insert_rows(con, table, rows)
        con.execute('DELETE FROM "ApimLogsLanding"')
        refresh_views(con)
    except Exception:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return appended


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the local stand-ins of the dedup materialized views."""
    for view, source in LOCAL_DEDUP_VIEWS.items():
        rows = query(con, f"{source} | summarize arg_max(Timestamp, *) by RecordId")
        con.execute(f'DELETE FROM "{view}"')
        insert_rows(con, view, rows)

"""Run the ``kusto/`` KQL locally: DuckDB tables from ``schemas/``, KQL through ``duckdb-kql``.

This is where every local stand-in for an ADX feature lives (one place, as issue #3 asks):

* ``materialized_view("V")`` reads a local table ``V`` that ``refresh_views`` rebuilds from the
  view's source: dedup views (``take_any(*) by RecordId``) become
  ``arg_max(Timestamp, *) by RecordId``, which keeps the same row when duplicates are identical,
  as replays are.
* functions duckdb-kql cannot run as written (``tdigest``, ``top n`` with a variable ``n``,
  ``array_sort_asc`` over several arrays) run with the bodies in ``kusto/local/equivalents.kql``,
  the one place that lists every local equivalent and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import duckdb
import duckdb_kql

from ingest.kusto import KUSTO_DIR, TABLES, functions, load_statements, split_statements
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

LOCAL_EQUIVALENTS = KUSTO_DIR / "local" / "equivalents.kql"
"""Local bodies of the functions whose production KQL duckdb-kql cannot run (see that file)."""


def local_overrides() -> dict[str, str]:
    """Function bodies that replace production ones locally, by function name."""
    text = LOCAL_EQUIVALENTS.read_text(encoding="utf-8")
    return {
        name: f.body
        for name, f in functions(split_statements(text, LOCAL_EQUIVALENTS.name)).items()
    }


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
    overrides = local_overrides()
    bodies = [
        replace(f, body=overrides.get(f.name, f.body)).declaration() for f in declared.values()
    ]
    duckdb_kql.set_functions([local_kql(body) for body in bodies])
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

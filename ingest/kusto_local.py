"""Run the ``kusto/`` KQL locally: DuckDB tables from ``schemas/``, KQL through ``duckdb-kql``.

This is where every local stand-in for an ADX feature lives (one place, as issue #3 asks):

* ``materialized_view("V")`` reads a local table ``V``. Each batch adds to a dedup view's table the
  new rows whose ``RecordId`` it has not seen: the same rows ``take_any(*) by RecordId`` keeps, as
  duplicates (replays) are identical.
* functions duckdb-kql cannot run as written (``tdigest``, ``top n`` with a variable ``n``,
  ``array_sort_asc`` over several arrays) run with the bodies in ``kusto/local/equivalents.kql``,
  the one place that lists every local equivalent and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
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


def local_function_declarations() -> list[str]:
    """Every stored function of ``kusto/`` as the local store runs it (equivalents applied)."""
    overrides = local_overrides()
    declared = functions(load_statements())
    return [
        local_kql(replace(f, body=overrides.get(f.name, f.body)).declaration())
        for f in declared.values()
    ]


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
    duckdb_kql.set_functions(local_function_declarations())
    for statement in statements:
        if statement.text.startswith(".set-or-append"):  # seed data (idempotent by design)
            duckdb_kql.script(con, statement.text)
    return con


def _sql_type(kind: str) -> str:
    return DUCKDB_TYPES[kind]


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Append rows (dicts keyed by column name) to a local table; returns how many.

    Rows go through a newline-delimited JSON file that DuckDB reads in bulk: far faster than row
    by row, and the same JSON the sink ingests into ADX.
    """
    import os
    import tempfile

    import orjson

    schema = load_table(LOCAL_DEDUP_VIEWS.get(table, table))
    count = 0
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as out:
            for row in rows:
                out.write(orjson.dumps(row, default=str) + b"\n")
                count += 1
        if count:
            columns = ", ".join(f"'{c.name}': 'VARCHAR'" for c in schema.columns)
            select = ", ".join(
                f'CAST("{c.name}" AS {_sql_type(c.type)}) AS "{c.name}"' for c in schema.columns
            )
            con.execute(
                f'INSERT INTO "{table}" BY NAME SELECT {select} FROM read_json(?, '
                f"format = 'newline_delimited', columns = {{{columns}}})",
                [path],
            )
    finally:
        os.unlink(path)
    return count


def query(con: duckdb.DuckDBPyConnection, kql: str) -> list[dict[str, Any]]:
    """Run KQL and return row dicts."""
    relation = duckdb_kql.query(con, local_kql(kql))
    columns = relation.columns
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


_POLICY_SQL: dict[str, str] = {}


@cache
def _policies() -> dict[str, list[dict[str, object]]]:
    """The update policies of kusto/, read once per process (the scripts do not change under it)."""
    from ingest.kusto import update_policies

    return update_policies(load_statements())


def _policy_sql(query: str) -> str:
    sql = _POLICY_SQL.get(query)
    if sql is None:
        sql = _POLICY_SQL[query] = duckdb_kql.to_sql(local_kql(query))
    return sql


def apply_update_policies(
    con: duckdb.DuckDBPyConnection, *, transaction: bool = True
) -> dict[str, int]:
    """Run the update policies on the landing table, then empty it (retention 0): one transaction.

    As in ADX, a batch lands in the curated tables all together or not at all. The dedup views'
    local tables take the batch's new RecordIds. Returns the rows appended per target table.
    """
    policies = _policies()
    appended = {}
    if transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        for table, entries in policies.items():
            for entry in entries:
                staged = f"_new_{table}"
                con.execute(
                    f'CREATE OR REPLACE TEMP TABLE "{staged}" AS {_policy_sql(str(entry["Query"]))}'
                )
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM "{staged}"')
                (count,) = con.execute(f'SELECT count(*) FROM "{staged}"').fetchone() or (0,)
                appended[table] = int(count)
                for view, source in LOCAL_DEDUP_VIEWS.items():
                    if source == table:
                        _dedup_into(con, view, staged)
                con.execute(f'DROP TABLE "{staged}"')
        con.execute('DELETE FROM "ApimLogsLanding"')
    except Exception:
        if transaction:
            con.execute("ROLLBACK")
        raise
    if transaction:
        con.execute("COMMIT")
    return appended


def _dedup_into(con: duckdb.DuckDBPyConnection, view: str, staged: str) -> None:
    """Add the staged rows whose RecordId the dedup table has not seen (one row per RecordId)."""
    con.execute(
        f'INSERT INTO "{view}" BY NAME SELECT * FROM "{staged}" n '
        f'WHERE NOT EXISTS (SELECT 1 FROM "{view}" d WHERE d."RecordId" = n."RecordId") '
        f'QUALIFY row_number() OVER (PARTITION BY n."RecordId" ORDER BY n."Timestamp" DESC) = 1'
    )

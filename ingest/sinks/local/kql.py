"""Run the ``kusto/`` KQL locally: DuckDB tables from ``schemas/``, KQL through ``duckdb-kql``.

Every local stand-in for an ADX feature lives here:

* ``materialized_view("V")`` reads ``V``. The dedup views are DuckDB views over their table,
  defined by their KQL in ``kusto/local/equivalents.kql`` (``arg_max(CorrelationId, *) by
  RecordId, Timestamp``: duplicates are the same record ingested again, so it keeps the row
  ``take_any(*)`` keeps); they are computed when read, so a batch is stored once, as in the
  curated table, and a time filter reaches the table below the aggregation.
* the aggregation views (``LlmUsageHourly``, ``LlmUsageDaily``) are DuckDB views of their
  production KQL over the dedup views, computed when read; ``RequestHealthHourly`` is not built
  (``NOT_BUILT_LOCALLY``: its ``tdigest`` columns have no local mapping).
* functions duckdb-kql cannot run as written (``tdigest``, ``top n`` with a variable ``n``,
  ``array_sort_asc`` over several arrays) run with the bodies in ``kusto/local/equivalents.kql``,
  the one place that lists every local equivalent and why.
* ``ApimLogsLanding`` is a temporary table: it keeps nothing between transactions (retention 0 in
  ADX) and is never written to the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import duckdb
import duckdb_kql

from ingest.kql.generate import TABLES
from ingest.kql.scripts import (
    MaterializedView,
    UpdatePolicy,
    functions,
    local_statements,
    production_statements,
    seeds,
    update_policies,
    views,
)
from ingest.schema import LANDING_TABLE, load_table
from ingest.sinks.local.spool import RowsFile, Spooled

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


def local_views() -> dict[str, MaterializedView]:
    """The views the local store defines itself, by name."""
    return views(local_statements())


NOT_BUILT_LOCALLY = {
    "RequestHealthHourly": (
        "its tdigest columns have no local mapping; Latency() and ApimRequestsDedup give the same "
        "requests"
    ),
}
"""Production views the local store does not build, and why (``kusto/local/equivalents.kql``)."""


def aggregation_views() -> dict[str, MaterializedView]:
    """The production views the local store builds from their own KQL: the ones over a view."""
    local = local_views()
    return {
        name: view
        for name, view in views(production_statements()).items()
        if name not in local and name not in NOT_BUILT_LOCALLY
    }


def local_overrides() -> dict[str, str]:
    """Function bodies that replace production ones locally, by function name."""
    return {name: f.body for name, f in functions(local_statements()).items()}


def local_function_declarations() -> list[str]:
    """Every stored function of ``kusto/`` as the local store runs it (equivalents applied)."""
    overrides = local_overrides()
    return [
        local_kql(f.declaration(overrides.get(f.name)))
        for f in functions(production_statements()).values()
    ]


_MATERIALIZED_VIEW = re.compile(r"""materialized_view\(\s*["'](\w+)["']\s*\)""")


def local_kql(body: str) -> str:
    """A KQL body with its production-only constructs replaced by their local equivalents."""
    return _MATERIALIZED_VIEW.sub(r"\1", body)


def connect(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every table of the scripts and their stored functions."""
    con: duckdb.DuckDBPyConnection = duckdb_kql.connect(path)
    for name in TABLES:
        con.execute(_create_table(name))
        # A store made before a column was added gets it at the end, as `.create-merge` does.
        present = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]
            ).fetchall()
        }
        for column in load_table(name).columns:
            if column.name not in present:
                con.execute(
                    f'ALTER TABLE "{name}" ADD COLUMN "{column.name}" {DUCKDB_TYPES[column.type]}'
                )
    # The dedup views, then the aggregation views over them: all computed when read. A view
    # over a dedup view has the columns of that view's table.
    local = local_views()
    for view, declared in [*local.items(), *aggregation_views().items()]:
        table = local[declared.source].source if declared.source in local else declared.source
        schema = {declared.source: [c.name for c in load_table(table).columns]}
        sql = duckdb_kql.to_sql(local_kql(declared.query), schema=schema)
        stale = con.execute(  # a store made when dedup views were tables
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? "
            "AND table_type = 'BASE TABLE'",
            [view],
        ).fetchone()
        if stale:
            con.execute(f'DROP TABLE "{view}"')
        con.execute(f'CREATE OR REPLACE VIEW "{view}" AS {sql}')
    duckdb_kql.set_functions(local_function_declarations())
    for seed in seeds(production_statements()):  # reference data (idempotent by design)
        duckdb_kql.script(con, seed.statement.text)
    return con


def _create_table(name: str) -> str:
    schema = load_table(name)
    columns = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in schema.columns)
    # The landing table keeps nothing (retention 0 in ADX): a temporary table, never written
    # to the file; each connection has its own, empty until a batch lands in it.
    kind = "TEMP TABLE" if name == LANDING_TABLE else "TABLE"
    return f'CREATE {kind} IF NOT EXISTS "{name}" ({columns})'


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection of its own to the store ``con`` opened, for one query on one thread.

    DuckDB runs the queries of several cursors at once, and interrupts one without the others;
    each has the (empty) landing table, as ``connect`` gives every connection.
    """
    own = con.cursor()
    own.execute("SET TimeZone = 'UTC'")
    own.execute(_create_table(LANDING_TABLE))
    return own


def _sql_type(kind: str) -> str:
    return DUCKDB_TYPES[kind]


MIN_OBJECT_SIZE = 1 << 20
"""The JSON reader's object size limit for a spool: at least this, or its longest row (the reader
allocates buffers of twice this per thread, so small rows keep the store's memory small)."""


def insert_spooled(con: duckdb.DuckDBPyConnection, table: str, rows: Spooled) -> None:
    """Append the rows of a spool file to a local table in one bulk read, then remove the file.

    DuckDB reads the JSON in bulk: far faster than row by row, and the same JSON the sink ingests
    into ADX. Each value is read straight into its column's type (ISO 8601 text for datetimes).
    """
    try:
        if not rows.rows:
            return
        schema = load_table(table)
        columns = ", ".join(f"'{c.name}': '{_sql_type(c.type)}'" for c in schema.columns)
        con.execute(
            f'INSERT INTO "{table}" BY NAME SELECT * FROM read_json(?, '
            f"format = 'newline_delimited', maximum_object_size = ?, columns = {{{columns}}})",
            [rows.path, max(MIN_OBJECT_SIZE, rows.longest + 1)],
        )
    finally:
        rows.discard()


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Append rows (dicts keyed by column name) to a local table."""
    spool = RowsFile()
    spool.add(list(rows))
    insert_spooled(con, table, spool.finish())


def query(con: duckdb.DuckDBPyConnection, kql: str) -> list[dict[str, Any]]:
    """Run KQL and return row dicts."""
    relation = duckdb_kql.query(con, local_kql(kql))
    columns = relation.columns
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


_POLICY_SQL: dict[str, str] = {}


@cache
def _policies() -> dict[str, UpdatePolicy]:
    """The update policies of ``kusto/``, parsed once per process."""
    return update_policies(production_statements())


def _policy_sql(query: str) -> str:
    sql = _POLICY_SQL.get(query)
    if sql is None:
        sql = _POLICY_SQL[query] = duckdb_kql.to_sql(local_kql(query))
    return sql


def apply_update_policies(
    con: duckdb.DuckDBPyConnection, *, transaction: bool = True
) -> dict[str, int]:
    """Run the update policies on the landing table, then empty it (retention 0): one transaction.

    As in ADX, a batch lands in the curated tables all together or not at all. Returns the rows
    appended per target table.
    """
    policies = _policies()
    appended = {}
    if transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        for table, policy in policies.items():
            for entry in policy.entries:
                sql = _policy_sql(str(entry["Query"]))
                (count,) = con.execute(f'INSERT INTO "{table}" BY NAME {sql}').fetchone() or (0,)
                appended[table] = int(count)
        con.execute(f'DELETE FROM "{LANDING_TABLE}"')
    except Exception:
        if transaction:
            con.execute("ROLLBACK")
        raise
    if transaction:
        con.execute("COMMIT")
    return appended

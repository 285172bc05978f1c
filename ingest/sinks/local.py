"""The embedded default store: a DuckDB file that runs the same ``kusto/`` KQL as ADX.

Each batch goes to the landing table and through the update policies in one transaction, as in
ADX; the dedup views' local tables grow with it; any KQL (tables, views, stored functions) can be
queried with ``python -m ingest query``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingest import kusto_local
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import BatchId, Rows

DEFAULT_DB = Path(".local") / "apimlogs.duckdb"
"""Where the demo and the commands keep the store unless told otherwise (git-ignored)."""

MEMORY_LIMIT = "128MB"
"""DuckDB's memory for the store (it spills to disk beyond): keeps a long replay's memory flat."""


class LocalSink:
    """A Sink writing into the local store."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        target = Path(path)
        if str(path) != ":memory:":
            target.parent.mkdir(parents=True, exist_ok=True)
        self.con = kusto_local.connect(str(path))
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute("SET preserve_insertion_order = false")

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Land the batch and run the update policies, all or nothing."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            kusto_local.insert_rows(self.con, LANDING_TABLE, tables.get(LANDING_TABLE, ()))
            kusto_local.insert_rows(self.con, DEAD_LETTER_TABLE, tables.get(DEAD_LETTER_TABLE, ()))
            kusto_local.apply_update_policies(self.con, transaction=False)
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of any KQL over the store."""
        return kusto_local.query(self.con, kql)

    def close(self) -> None:
        """Flush and close the file."""
        self.con.close()

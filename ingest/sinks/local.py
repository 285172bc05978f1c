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

FLUSH_ROWS = 5_000
"""Rows buffered before one store transaction: the local twin of ADX's ingestion batching policy.

Each transaction plans the update policies' SQL once (tens of milliseconds), so a few large
transactions are much cheaper than many small ones; 5,000 rows keep the buffer at a few tens of MB.
"""

MEMORY_LIMIT = "128MB"
"""DuckDB's memory for the store (it spills to disk beyond): keeps a long replay's memory flat."""


class LocalSink:
    """A Sink writing into the local store."""

    def __init__(self, path: str | Path = DEFAULT_DB, *, flush_rows: int = FLUSH_ROWS) -> None:
        self.flush_rows = flush_rows
        self._landing: list[Any] = []
        self._dead_letters: list[Any] = []
        target = Path(path)
        if str(path) != ":memory:":
            target.parent.mkdir(parents=True, exist_ok=True)
        self.con = kusto_local.connect(str(path))
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute("SET preserve_insertion_order = false")

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Take a batch's rows; they land (all or nothing) at the next flush."""
        self._landing.extend(tables.get(LANDING_TABLE, ()))
        self._dead_letters.extend(tables.get(DEAD_LETTER_TABLE, ()))
        if len(self._landing) + len(self._dead_letters) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Land the buffered rows and run the update policies, in one transaction, as ADX does."""
        if not self._landing and not self._dead_letters:
            return
        self.con.execute("BEGIN TRANSACTION")
        try:
            kusto_local.insert_rows(self.con, LANDING_TABLE, self._landing)
            kusto_local.insert_rows(self.con, DEAD_LETTER_TABLE, self._dead_letters)
            kusto_local.apply_update_policies(self.con, transaction=False)
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")
        self._landing = []
        self._dead_letters = []

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of any KQL over the store (buffered rows are landed first)."""
        self.flush()
        return kusto_local.query(self.con, kql)

    def close(self) -> None:
        """Land what is buffered and close the file."""
        self.flush()
        self.con.close()

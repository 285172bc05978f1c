"""The embedded default store: a DuckDB file that runs the same ``kusto/`` KQL as ADX.

Each batch goes to the landing table and through the update policies in one transaction, as in
ADX; the dedup views' local tables grow with it; any KQL (tables, views, stored functions) can be
queried with ``python -m ingest query``.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingest import kusto_local
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import BatchId, Rows

DEFAULT_DB = Path(".local") / "apimlogs.duckdb"
"""Where the demo and the commands keep the store unless told otherwise (git-ignored)."""

FLUSH_ROWS = 20_000
"""Rows per store transaction: the local twin of ADX's ingestion batching policy.

Each transaction plans the update policies' SQL once (tens of milliseconds), so a few large
transactions are much cheaper than many small ones. Rows wait as JSON in a temporary file (about
1.6 KB each without text), not as Python objects, so the buffer costs no memory.
"""

MEMORY_LIMIT = "128MB"
"""DuckDB's memory for the store (it spills to disk beyond): keeps a long replay's memory flat."""

CHECKPOINT_THRESHOLD = "256MB"
"""WAL size that makes DuckDB checkpoint (its default, 16 MB, rewrote the file every batch)."""


class LocalSink:
    """A Sink writing into the local store.

    Rows are encoded as they arrive and land in transactions of about ``flush_rows`` rows. A
    transaction runs on a background thread (DuckDB works without the GIL), so the next batches
    are flattened while the previous ones land; at most one transaction is in flight, and its
    failure is raised by the next ``write``, ``flush``, ``query`` or ``close``.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, *, flush_rows: int = FLUSH_ROWS) -> None:
        self.flush_rows = flush_rows
        self._landing = kusto_local.RowsFile()
        self._dead_letters = kusto_local.RowsFile()
        self._in_flight: Future[None] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-store")
        target = Path(path)
        if str(path) != ":memory:":
            target.parent.mkdir(parents=True, exist_ok=True)
        self.con = kusto_local.connect(str(path))
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Take a batch's rows; they land (all or nothing) with the next transaction."""
        self._landing.add(tables.get(LANDING_TABLE, ()))
        self._dead_letters.add(tables.get(DEAD_LETTER_TABLE, ()))
        if self._landing.rows + self._dead_letters.rows >= self.flush_rows:
            self._start_transaction()

    def flush(self) -> None:
        """Land every buffered row and wait until the store has committed them."""
        self._start_transaction()
        self._wait()

    def _start_transaction(self) -> None:
        if not self._landing.rows and not self._dead_letters.rows:
            return
        self._wait()  # one transaction at a time: memory stays bounded
        landing, dead_letters = self._landing, self._dead_letters
        self._landing, self._dead_letters = kusto_local.RowsFile(), kusto_local.RowsFile()
        self._in_flight = self._writer.submit(self._land, landing, dead_letters)

    def _wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()  # re-raises the transaction's error

    def _land(self, landing: kusto_local.RowsFile, dead_letters: kusto_local.RowsFile) -> None:
        """Land rows and run the update policies, in one transaction, as ADX does."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            kusto_local.insert_file(self.con, LANDING_TABLE, landing)
            kusto_local.insert_file(self.con, DEAD_LETTER_TABLE, dead_letters)
            kusto_local.apply_update_policies(self.con, transaction=False)
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        finally:
            landing.discard()
            dead_letters.discard()
        self.con.execute("COMMIT")

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of any KQL over the store (buffered rows are landed first)."""
        self.flush()
        return kusto_local.query(self.con, kql)

    def close(self) -> None:
        """Land what is buffered and close the file."""
        try:
            self.flush()
        finally:
            self._writer.shutdown()
            self._landing.discard()
            self._dead_letters.discard()
            self.con.close()

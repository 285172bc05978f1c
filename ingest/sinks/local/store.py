"""The embedded default store: a DuckDB file that runs the same ``kusto/`` KQL as ADX.

Rows land in transactions (a few batches' worth): the landing table, then the update policies,
all or nothing, as in ADX; the dedup views are views (``kusto/local/equivalents.kql``); any KQL
(tables, views, stored functions) can be queried with ``python -m ingest query``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from ingest.model import BatchId
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import Tables
from ingest.sinks.local import DEFAULT_DB, StoreBusyError, kql
from ingest.sinks.local.spool import SpooledBatch, SpoolSink

FLUSH_ROWS = 20_000
"""Rows per store transaction: the local twin of ADX's ingestion batching policy.

Each transaction plans the update policies' SQL once, so a few large transactions are much
cheaper than many small ones. Rows wait as JSON in a spool file, not as Python objects, so the
buffer costs no memory; a transaction also ends at ``spool.FLUSH_BYTES`` of JSON, whatever its
row count.
"""

MEMORY_LIMIT = "64MB"
"""DuckDB's memory for the store (it spills to disk beyond): keeps a long replay's memory flat."""

QUERY_MEMORY_LIMIT = "2GB"
"""DuckDB's memory when the store answers queries (``query``, ``report``, ``serve``): the
per-call joins and aggregations of ``LlmCalls`` over a few hundred thousand calls do not fit
in ``MEMORY_LIMIT`` (DuckDB cannot spill every operator), and a reader has the machine to itself."""

THREADS = 1
"""DuckDB threads: one, as replay workers flatten on the other cores (and every thread of the JSON
reader takes buffers of its own out of ``MEMORY_LIMIT``)."""

CHECKPOINT_THRESHOLD = "256MB"
"""WAL size that makes DuckDB checkpoint (its default, 16 MB, rewrote the file every batch)."""

MAX_PENDING = 3
"""Spooled transactions that may wait for the store before writers are held back (on disk)."""


class LocalSink:
    """A Sink writing into the local store.

    Rows are spooled as they arrive (``SpoolSink``) and land in transactions of about
    ``flush_rows`` rows, run in order on a background thread (DuckDB works without the GIL), so
    the next batches are flattened while the previous ones land. ``land`` takes transactions
    spooled elsewhere (replay workers). A transaction's failure is raised by the next call.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        *,
        flush_rows: int = FLUSH_ROWS,
        for_queries: bool = False,
    ) -> None:
        self.flush_rows = flush_rows
        self.for_queries = for_queries
        """Opened to answer queries: more memory and every core, instead of a writer's budget."""
        self.path = str(path)
        self._spool_folder = ""
        self._spool: SpoolSink | None = None
        self._pending: deque[Future[None]] = deque()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-store")
        in_memory = self.path == ":memory:"
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._spool_root = Path(tempfile.gettempdir() if in_memory else self.path + ".spool")
        # Opened on the store's thread, so that a replay starts its workers meanwhile.
        self._connection = self._writer.submit(self._connect, self.path)

    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        try:
            con = kql.connect(path)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"the local store `{path}` is in use by another process (a replay, query, "
                    "report or serve): wait for it to finish, or use another --db"
                ) from exc
            raise
        if path != ":memory:":
            self._remove_stale_spools()
        if self.for_queries:
            con.execute(f"SET memory_limit = '{QUERY_MEMORY_LIMIT}'")
            con.execute(f"SET threads = {os.cpu_count() or 1}")
        else:
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET threads = {THREADS}")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        return con

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The store's DuckDB connection (waits until it is open; raises if it could not be)."""
        return self._connection.result()

    def _remove_stale_spools(self) -> None:
        """Remove what a killed run left beside the store (safe: this process holds its lock)."""
        if not self._spool_root.is_dir():
            return
        ours = Path(self._spool_folder).name if self._spool_folder else ""
        for folder in self._spool_root.iterdir():
            if folder.name != ours:
                shutil.rmtree(folder, ignore_errors=True)

    @property
    def spool_folder(self) -> str:
        """Where rows wait for their transaction (made when first needed, removed by ``close``).

        Beside the store (``<db>.spool/``), so that what a killed run left is found and removed
        by the next run that opens the store.
        """
        if not self._spool_folder:
            self._spool_root.mkdir(parents=True, exist_ok=True)
            self._spool_folder = tempfile.mkdtemp(prefix="ingest-spool-", dir=self._spool_root)
        return self._spool_folder

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Take a batch's rows; they land (all or nothing) with the transaction they spool into."""
        self.write_slices(batch, (tables,), final_attempt=final_attempt)

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Take a batch's rows slice by slice (spooled to disk as they come), as ``write``."""
        if self._spool is None:
            self._spool = SpoolSink(self.flush_rows, self.spool_folder)
        self._spool.write_slices(batch, slices, final_attempt=final_attempt)
        for spooled in self._spool.take_ready():
            self.land(spooled)

    def land(self, spooled: SpooledBatch) -> None:
        """Queue a spooled transaction (waits while ``MAX_PENDING`` are queued)."""
        self._reap(block=len(self._pending) >= MAX_PENDING)
        self._pending.append(self._writer.submit(self._land, spooled))

    def flush(self) -> None:
        """Land every buffered row and wait until the store has committed them.

        Raises the store's own failure (it could not be opened, or a transaction failed), even
        when there was nothing to land.
        """
        self._connection.result()
        if self._spool is not None:
            for spooled in self._spool.finish():
                self.land(spooled)
            self._spool = None
        while self._pending:
            self._reap(block=True)

    def _reap(self, *, block: bool) -> None:
        """Collect finished transactions (the oldest one, waiting for it, if ``block``)."""
        while self._pending and (block or self._pending[0].done()):
            self._pending.popleft().result()  # re-raises the transaction's error
            block = False

    def _land(self, spooled: SpooledBatch) -> None:
        """Land rows and run the update policies, in one transaction, as ADX does."""
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                kql.insert_spooled(self.con, LANDING_TABLE, spooled.landing)
                kql.insert_spooled(self.con, DEAD_LETTER_TABLE, spooled.dead_letters)
                kql.apply_update_policies(self.con, transaction=False)
            except Exception:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")
        finally:
            spooled.discard()

    def replace(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace every row of a table with ``rows``, in one transaction (``.set-or-replace``).

        For the reference tables, which are loaded whole from a file; buffered rows land first.
        """
        self.flush()
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(f'DELETE FROM "{table}"')
            kql.insert_rows(self.con, table, rows)
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def query(self, text: str) -> list[dict[str, Any]]:
        """Rows of any KQL over the store (buffered rows are landed first)."""
        self.flush()
        return kql.query(self.con, text)

    def close(self) -> None:
        """Land what is buffered and close the file (a store that never opened has nothing)."""
        opened = self._connection.exception() is None
        try:
            if opened:
                self.flush()
        finally:
            self._writer.shutdown(cancel_futures=True)
            if self._spool_folder:
                shutil.rmtree(self._spool_folder, ignore_errors=True)
                if self._spool_root.name.endswith(".spool"):
                    with contextlib.suppress(OSError):
                        self._spool_root.rmdir()  # only when empty
            if opened:
                self.con.close()

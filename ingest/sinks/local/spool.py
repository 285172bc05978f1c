"""Rows spooled to JSON files on their way into the local store.

A batch's rows are encoded once, as they arrive, into a temporary JSON-lines file; the store reads
a whole file in one bulk insert. Rows wait on disk, not in memory, and a file can be handed from
the process that flattened the events to the one that owns the store. No DuckDB here: replay
workers import this module, not the store's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ingest.model import BatchId
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import Tables, admit

WRITE_BUFFER = 1 << 20
"""Bytes buffered per spool file between writes (rows are written one by one)."""

FLUSH_BYTES = 32 << 20
"""JSON bytes that make a spool ready whatever its row count: bounds a transaction's memory."""


@dataclass(frozen=True)
class Spooled:
    """A finished spool file: ``rows`` rows as newline-delimited JSON (none: nothing to insert)."""

    path: str
    rows: int
    longest: int = 0
    """Bytes of the longest line (the reader's buffer must hold it)."""

    def discard(self) -> None:
        """Remove the file."""
        if self.path:
            Path(self.path).unlink(missing_ok=True)


class RowsFile:
    """Rows being appended to a newline-delimited JSON file (DuckDB reads it fastest).

    The file is created in ``folder`` (default: the system's temporary folder) with the first row.
    """

    def __init__(self, folder: str | None = None) -> None:
        self.folder = folder
        self.path = ""
        self.rows = 0
        self.bytes = 0
        self.longest = 0
        self._out: BinaryIO | None = None

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows (dicts keyed by column name)."""
        if not rows:
            return
        if self._out is None:
            fd, self.path = tempfile.mkstemp(prefix="rows-", suffix=".json", dir=self.folder)
            self._out = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        write, dumps, longest, size = self._out.write, orjson.dumps, self.longest, 0
        for row in rows:
            line = dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
            write(line)
            size += len(line)
            longest = max(longest, len(line))
        self.rows += len(rows)
        self.bytes += size
        self.longest = longest

    def finish(self) -> Spooled:
        """Close the file."""
        if self._out is not None:
            self._out.close()
        return Spooled(self.path, self.rows, self.longest)


@dataclass(frozen=True)
class SpooledBatch:
    """The landing rows and dead letters of one future store transaction."""

    landing: Spooled
    dead_letters: Spooled

    @property
    def rows(self) -> int:
        """Rows in both files."""
        return self.landing.rows + self.dead_letters.rows

    def discard(self) -> None:
        """Remove both files."""
        self.landing.discard()
        self.dead_letters.discard()


class SpoolSink:
    """A Sink that spools rows into files for the local store.

    A spool is ready to land once it holds ``flush_rows`` rows or ``flush_bytes`` bytes of JSON
    (rows with captured text are large).
    """

    def __init__(
        self, flush_rows: int, folder: str | None = None, flush_bytes: int = FLUSH_BYTES
    ) -> None:
        self.flush_rows = flush_rows
        self.flush_bytes = flush_bytes
        self.folder = folder
        self._landing = RowsFile(folder)
        self._dead_letters = RowsFile(folder)
        self._ready: list[SpooledBatch] = []

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Encode a batch's rows; a full spool becomes ready to land."""
        self.write_slices(batch, (tables,), final_attempt=final_attempt)

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Encode a batch's rows slice by slice; a full spool becomes ready to land.

        A batch is never split between two spools: the spool is judged full after the batch.
        """
        for tables in slices:
            admitted = admit(tables)  # one row that does not fit never fails a whole transaction
            self._landing.add(admitted.get(LANDING_TABLE, ()))
            self._dead_letters.add(admitted.get(DEAD_LETTER_TABLE, ()))
            del admitted
        rows = self._landing.rows + self._dead_letters.rows
        if (
            rows >= self.flush_rows
            or self._landing.bytes + self._dead_letters.bytes >= self.flush_bytes
        ):
            self._ready.append(self._swap(renew=True))

    def take_ready(self) -> list[SpooledBatch]:
        """The full spools written since the last call."""
        ready, self._ready = self._ready, []
        return ready

    def finish(self) -> list[SpooledBatch]:
        """Every spool not yet taken, the partial one included; the sink takes no more rows."""
        last = self._swap(renew=False)
        if last.rows:
            self._ready.append(last)
        else:
            last.discard()
        return self.take_ready()

    def _swap(self, *, renew: bool) -> SpooledBatch:
        full = SpooledBatch(self._landing.finish(), self._dead_letters.finish())
        if renew:
            self._landing, self._dead_letters = RowsFile(self.folder), RowsFile(self.folder)
        return full

"""A list-backed sink for tests and dry runs (like ``structlog.testing``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.model import BatchId
from ingest.sinks.base import Tables, admit


@dataclass
class MemorySink:
    """Keeps every row it is given, by table; can be told to fail a number of times first."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batches: list[BatchId] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Record the rows (or raise the next planned failure)."""
        self.write_slices(batch, (tables,), final_attempt=final_attempt)

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Record the rows of every slice, each admitted on its own (or raise a planned failure)."""
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(batch)
        for tables in slices:
            for table, rows in admit(tables).items():
                self.tables.setdefault(table, []).extend(dict(r) for r in rows)

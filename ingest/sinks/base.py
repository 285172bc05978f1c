"""What every sink offers the pipeline (ESF's ProtocolShipper, dlt's destination client)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ingest.model import BatchId

Rows = Sequence[Mapping[str, Any]]
"""Rows of one table: mappings keyed by column name, in the table's column order."""


class Sink(Protocol):
    """Takes the rows of one batch, table by table."""

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Deliver every table's rows, or raise TransientIngestError to have the batch replayed.

        ``final_attempt`` says the trigger will not replay this batch again: a sink must then keep
        what it could not deliver (a dead-letter store) instead of raising.
        """
        ...

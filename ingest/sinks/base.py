"""What every sink offers the pipeline (ESF's ProtocolShipper, dlt's destination client)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ingest.model import EventInput

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class BatchId:
    """Where a batch came from: partition and sequence-number range (names dead-letter blobs)."""

    partition_id: str = ""
    first_sequence: int | None = None
    last_sequence: int | None = None

    @classmethod
    def of(cls, events: Sequence[EventInput]) -> BatchId:
        """The id of a batch of events."""
        sequences = [e.meta.sequence_number for e in events if e.meta.sequence_number is not None]
        partitions = {e.meta.partition_id for e in events if e.meta.partition_id}
        return cls(
            partition_id=",".join(sorted(partitions)),
            first_sequence=min(sequences) if sequences else None,
            last_sequence=max(sequences) if sequences else None,
        )

    @property
    def name(self) -> str:
        """``partition-<p>/seq-<first>-<last>``, usable as a blob folder."""
        first = "na" if self.first_sequence is None else str(self.first_sequence)
        last = "na" if self.last_sequence is None else str(self.last_sequence)
        return f"partition-{self.partition_id or 'na'}/seq-{first}-{last}"


class Sink(Protocol):
    """Takes the rows of one batch, table by table."""

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Deliver every table's rows, or raise TransientIngestError to have the batch replayed.

        ``final_attempt`` says the trigger will not replay this batch again: a sink must then keep
        what it could not deliver (a dead-letter store) instead of raising.
        """
        ...

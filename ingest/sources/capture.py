"""Event Hubs Capture Avro files: each record's ``Body`` is one event, with its lineage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from ingest.core.coerce import FieldError, to_datetime, to_int, to_str
from ingest.model import EventInput, EventMeta
from ingest.sources.errors import SourceError

CAPTURE_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p",)
"""How Capture writes ``EnqueuedTimeUtc`` (en-US culture)."""

_CAPTURE_PARTITION = re.compile(
    r"[/\\](\d+)[/\\]\d{4}[/\\]\d{2}[/\\]\d{2}[/\\]\d{2}[/\\]\d{2}[/\\]\d{2}\.avro$"
)
"""Capture's default path: ``{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/...``."""


def capture_partition(path: str) -> str:
    """The partition id in a Capture file's default path ('' for any other path)."""
    m = _CAPTURE_PARTITION.search(path)
    return m.group(1) if m else ""


def _capture_meta(record: dict[str, Any], partition: str) -> EventMeta:
    try:
        enqueued = to_datetime(
            record.get("EnqueuedTimeUtc"), "EnqueuedTimeUtc", CAPTURE_TIME_FORMATS
        )
    except (FieldError, OverflowError, ValueError):  # a time this side cannot read: no lineage
        enqueued = None
    try:
        sequence = to_int(record.get("SequenceNumber"), "SequenceNumber")
    except FieldError:
        sequence = None
    return EventMeta(
        partition_id=partition,
        sequence_number=sequence,
        offset=to_str(record.get("Offset")),
        enqueued_time=enqueued,
    )


def read_capture(stream: BinaryIO, partition: str = "", name: str = "") -> Iterator[EventInput]:
    """Events of an Event Hubs Capture Avro file (``Body`` bytes plus lineage).

    A file that fails part-way (truncated, a string ``Body`` that is not UTF-8, a block that does
    not decode) yields every event before the fault, then raises SourceError naming the file and
    how far it got: the caller reports it and goes on with the other inputs.
    """
    import fastavro

    try:
        reader = fastavro.reader(stream)
    except Exception as exc:  # any fault of the header: not a Capture file
        raise SourceError(f"`{name or 'input'}` is not an Avro container: {exc}") from exc
    records = iter(reader)
    read = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:  # the decoder's faults vary; all are the file's
            raise SourceError(
                f"Capture file `{name or 'input'}` is unreadable after {read} events "
                f"({type(exc).__name__}: {exc}); the events before it were read"
            ) from exc
        read += 1
        if not isinstance(record, dict):
            continue
        body = record.get("Body")
        if isinstance(body, str):
            body = body.encode("utf-8", errors="surrogateescape")
        yield EventInput(body if isinstance(body, bytes) else b"", _capture_meta(record, partition))

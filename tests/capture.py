"""Event Hubs Capture Avro files written with the documented schema, for the source tests."""

from __future__ import annotations

from pathlib import Path

import fastavro

CAPTURE_SCHEMA = {
    "type": "record",
    "name": "EventData",
    "namespace": "Microsoft.ServiceBus.Messaging",
    "fields": [
        {"name": "SequenceNumber", "type": "long"},
        {"name": "Offset", "type": "string"},
        {"name": "EnqueuedTimeUtc", "type": "string"},
        {
            "name": "SystemProperties",
            "type": {"type": "map", "values": ["long", "double", "string", "bytes"]},
        },
        {
            "name": "Properties",
            "type": {"type": "map", "values": ["long", "double", "string", "bytes", "null"]},
        },
        {"name": "Body", "type": ["null", "bytes"]},
    ],
}
"""Event Hubs Capture's Avro schema, as documented for Capture files."""


def write_capture(path: Path, bodies: list[bytes | None], sync_interval: int = 16000) -> None:
    """A Capture file of ``bodies``; a small ``sync_interval`` writes a block per event or so."""
    records = [
        {
            "SequenceNumber": 5000 + i,
            "Offset": str(1_048_576 + 4096 * i),
            "EnqueuedTimeUtc": f"9/30/2024 12:3{i}:0{i} PM",
            "SystemProperties": {"x-opt-enqueued-time": 1727699400000 + i},
            "Properties": {},
            "Body": body,
        }
        for i, body in enumerate(bodies)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        fastavro.writer(
            out,
            fastavro.parse_schema(CAPTURE_SCHEMA),
            records,
            codec="deflate",
            sync_interval=sync_interval,
        )

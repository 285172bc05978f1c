"""Azure Functions app (Python v2 programming model).

Thin by design: it adapts the Event Hub trigger's events to the core's ``EventInput`` and leaves
every decision to ``ingest``. The Event Hub trigger and its ADX sink are registered by issue #4;
until then the app registers no function, so a deployment consumes (and checkpoints) nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import azure.functions as func

from ingest.coerce import format_datetime
from ingest.model import EventInput, EventMeta

app = func.FunctionApp()


def _partition_id(metadata: Mapping[str, Any] | None) -> str:
    context = (metadata or {}).get("PartitionContext")
    if isinstance(context, Mapping):
        return str(context.get("PartitionId", ""))
    return ""


def event_inputs(events: Iterable[func.EventHubEvent]) -> list[EventInput]:
    """The trigger's events as the core's inputs: body plus partition, sequence, offset, time."""
    inputs = []
    for event in events:
        enqueued = event.enqueued_time
        inputs.append(
            EventInput(
                event.get_body(),
                EventMeta(
                    partition_id=_partition_id(event.metadata),
                    sequence_number=event.sequence_number,
                    offset="" if event.offset is None else str(event.offset),
                    enqueued_time=format_datetime(enqueued) if enqueued else None,
                ),
            )
        )
    return inputs

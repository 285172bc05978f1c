"""Publishing events to a real Event Hub (``python -m ingest send``), to smoke-test a deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

from ingest.model import EventInput

SEND_ERRORS: tuple[type[Exception], ...] = (EventHubError,)
"""What the SDK raises when the hub cannot be reached, is unknown or refuses the events."""


def producer(namespace: str, eventhub: str, connection_string: str = "") -> EventHubProducerClient:
    """A producer: ``DefaultAzureCredential`` on the namespace, or a connection string if given."""
    if connection_string:
        return EventHubProducerClient.from_connection_string(
            connection_string, eventhub_name=eventhub
        )
    from ingest.identity import credential

    return EventHubProducerClient(
        fully_qualified_namespace=namespace, eventhub_name=eventhub, credential=credential()
    )


def send(
    client: Any,
    events: Iterable[EventInput],
    *,
    partition_key: str | None = None,
    report: Callable[[str], None] = lambda _: None,
) -> tuple[int, int]:
    """Send event bodies in as few batches as the hub allows; returns (events, batches)."""
    sent = batches = 0
    batch = client.create_batch(partition_key=partition_key)
    for event in events:
        data = EventData(event.body)
        data.content_type = "application/json"
        try:
            batch.add(data)
        except ValueError:  # the batch is full: send it, start the next one with this event
            if len(batch) == 0:
                raise ValueError(
                    f"an event of {len(event.body)} bytes is larger than the hub accepts"
                ) from None
            client.send_batch(batch)
            batches += 1
            report(f"sent batch {batches} ({len(batch)} events)")
            batch = client.create_batch(partition_key=partition_key)
            batch.add(data)
        sent += 1
    if len(batch):
        client.send_batch(batch)
        batches += 1
        report(f"sent batch {batches} ({len(batch)} events)")
    return sent, batches

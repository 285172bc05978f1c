"""``send``: event bodies into real ``azure.eventhub`` batches, at the SDK boundary."""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub import EventDataBatch

from ingest.commands.send import send
from ingest.model import EventInput
from tests.conftest import load_fixture


class RecordingProducer:
    """Stands where ``EventHubProducerClient`` meets the service: real batches, recorded sends."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.sent: list[EventDataBatch] = []
        self.keys: list[str | None] = []

    def create_batch(self, partition_key: str | None = None) -> EventDataBatch:
        self.keys.append(partition_key)
        return EventDataBatch(max_size_in_bytes=self.max_size, partition_key=partition_key)

    def send_batch(self, batch: EventDataBatch) -> None:
        self.sent.append(batch)


def _bodies(batch: Any) -> list[bytes]:
    return [b"".join(event.body) for event in batch._internal_events]


def test_events_are_packed_into_as_few_batches_as_fit() -> None:
    body = load_fixture("chat_nonstream")  # about 5 KB
    producer = RecordingProducer(max_size=12_000)
    sent, batches = send(producer, [EventInput(body) for _ in range(5)], partition_key="apim")
    assert (sent, batches) == (5, 3)
    assert [len(b) for b in producer.sent] == [2, 2, 1]
    assert all(content == body for batch in producer.sent for content in _bodies(batch))
    assert set(producer.keys) == {"apim"}
    assert all(
        event.content_type == "application/json"
        for b in producer.sent
        for event in b._internal_events
    )


def test_an_event_larger_than_the_hub_accepts_is_an_error() -> None:
    with pytest.raises(ValueError, match="larger than the hub accepts"):
        send(RecordingProducer(max_size=1_000), [EventInput(b"x" * 5_000)])

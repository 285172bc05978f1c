"""Replay's batching: bounded in events and in bytes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingest.commands.replay import chunks
from ingest.model import EventInput
from ingest.sources import SourceError


def test_batches_are_bounded_in_events_and_in_bytes() -> None:
    small = [EventInput(b"x" * 10)] * 25
    assert [len(b) for b in chunks(small, 10, max_bytes=1 << 20)] == [10, 10, 5]
    large = [EventInput(b"y" * 400)] * 10
    assert [len(b) for b in chunks(large, 100, max_bytes=1000)] == [3, 3, 3, 1]
    huge = [EventInput(b"z" * 5000)]
    assert [len(b) for b in chunks(huge, 100, max_bytes=1000)] == [1]  # one event at least
    assert list(chunks([], 10)) == []


def test_the_events_before_an_inputs_fault_are_batched_before_its_error() -> None:
    def cut_short() -> Iterator[EventInput]:
        yield from (EventInput(b"{}") for _ in range(5))
        raise SourceError("unreadable after 5 events")

    batches = chunks(cut_short(), 3)
    assert len(next(batches)) == 3
    assert len(next(batches)) == 2  # read before the fault: replayed, not dropped with it
    with pytest.raises(SourceError, match="after 5 events"):
        next(batches)

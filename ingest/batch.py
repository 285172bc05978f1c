"""One batch of events through the core into a sink: the Functions app's step, also replay's."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, BatchResult, EventInput
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import Sink


def run_batch(
    pipeline: Pipeline, sink: Sink, events: Sequence[EventInput], *, final_attempt: bool
) -> BatchResult:
    """Flatten a batch and hand its rows and dead letters to the sink."""
    result = pipeline.process(events)
    sink.write(
        BatchId.of(events),
        {LANDING_TABLE: result.rows, DEAD_LETTER_TABLE: result.dead_letters},
        final_attempt=final_attempt,
    )
    return result

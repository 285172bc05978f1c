"""One batch of events through the core into a sink: the Functions app's step, also replay's.

A batch is flattened in slices of a few megabytes of events, each handed to the sink as soon as it
is built (``Sink.write_slices``): the rows of a whole batch never exist at once, whatever its
records. The sink still treats the slices as one batch (the ADX sink: one payload per table).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, BatchResult, EventInput
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import Sink, Tables

SLICE_BYTES = 16 << 20
"""Event-body bytes after which a slice is handed to the sink. A slice's rows are what the batch
path holds beyond its inputs: about 2 KB of Python a row, so 16 MB of the smallest records that
make rows (180 bytes) is about 190 MB; larger records make fewer rows a megabyte. Smaller slices
save little more (the batch's bodies, which the trigger hands over at once, remain; its compressed
payloads move to a temporary file past a few megabytes), and the slice count costs nothing else:
the sink still sends one payload per table (or per 1 GiB of raw rows). The same bound as a replay
batch (``commands.replay.BATCH_BYTES``): a replay batch is one slice."""

SLICE_RECORDS = 50_000
"""Records after which a slice is handed over whatever its bytes: gzip bodies hold many records a
megabyte, so bytes alone do not bound a slice's rows. A slice ends after the event that crosses a
bound, so it holds at most this plus one event's records (``pipeline.MAX_RECORDS_PER_EVENT``)."""


def run_batch(
    pipeline: Pipeline,
    sink: Sink,
    events: Sequence[EventInput],
    *,
    final_attempt: bool,
    keep_rows: bool = False,
) -> BatchResult:
    """Flatten a batch slice by slice into the sink; return its counts.

    The rows and dead letters themselves are returned too only with ``keep_rows`` (tests, dry
    runs): keeping them holds the whole batch's rows again.
    """
    result = BatchResult()
    sink.write_slices(
        BatchId.of(events),
        slices(pipeline, events, result, keep_rows=keep_rows),
        final_attempt=final_attempt,
    )
    if result.events != len(events):
        raise RuntimeError(
            f"the sink `{type(sink).__name__}` took {result.events} of {len(events)} events' "
            "slices: a sink must read every slice of a batch"
        )
    return result


def slices(
    pipeline: Pipeline, events: Sequence[EventInput], result: BatchResult, *, keep_rows: bool
) -> Iterator[Tables]:
    """The batch's rows and dead letters, a slice at a time, counted into ``result`` as they go.

    A slice's lists are emptied when the sink asks for the next one (its loop variable would
    otherwise keep them while the next is built): a sink copies what it keeps.
    """
    part = BatchResult()
    last = len(events) - 1
    for index, event in enumerate(events):
        pipeline.process_event(event, part)
        if index == last or part.bytes_in >= SLICE_BYTES or part.records >= SLICE_RECORDS:
            result.add(part, keep_rows=keep_rows)
            yield {LANDING_TABLE: part.rows, DEAD_LETTER_TABLE: part.dead_letters}
            part.rows.clear()
            part.dead_letters.clear()
            part = BatchResult()

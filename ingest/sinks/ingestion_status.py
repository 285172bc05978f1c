"""The outcome of queued ingestions, as ADX reports it later to its status queues.

Queued ingestion returns as soon as the blob is queued; ADX ingests it within its batching window
and then posts a success or a failure message (``ReportLevel.FailuresAndSuccesses``, asked by the
sink) to the status queues of its Data Management service. ``check`` reads them:

* success: the pending copy of the payload is dropped;
* failure (a mapping error, an update policy that failed, a rejected creation time, ...): the copy
  becomes a kept batch (``redrive`` re-ingests it once the cause is fixed), one dead letter with
  reason ``ingestion_failed`` names it in ``IngestDeadLetters``, and a metric counts it;
* no report within ``max_age``: the copy is kept the same way, as "no status".

The Functions app runs ``check`` on a timer, so a failure that arrives after the invocation that
ingested the batch returned is still caught.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.core.pipeline import record_id
from ingest.core.privacy import mask_secrets
from ingest.model import BatchId, RejectReason, empty_dead_letter_row
from ingest.schema import DEAD_LETTER_TABLE
from ingest.sinks.adx import AdxSink, encode
from ingest.sinks.dead_letters import Kept
from ingest.sinks.spooled import Spool

MAX_AGE = timedelta(hours=48)
"""How long a pending copy waits for ADX's report before it is kept as "no status"."""

MAX_MESSAGES = 5000
"""Status messages read per run at most (the next run reads the rest)."""

PAGE = 16
"""Messages asked of the status queues at once (the SDK asks each queue for one more, and a
storage queue hands out 32 at most)."""


@dataclass(slots=True)
class StatusCounts:
    """What one run of ``check`` did."""

    succeeded: int = 0
    failed: int = 0
    expired: int = 0
    unknown: int = 0
    """Reports of ingestions this app holds no copy of (already handled, or not this app's)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed ingestion as ADX reports it."""

    source_id: str
    table: str
    error: str
    failed_on: str | None


def failure_from(message: Any) -> Failure:
    """A ``FailureMessage`` of ``azure.kusto.ingest.status`` as a Failure."""
    parts = [
        str(getattr(message, key, "") or "")
        for key in ("FailureStatus", "ErrorCode", "Details")
        if getattr(message, key, None)
    ]
    origin = " (update policy)" if getattr(message, "OriginatesFromUpdatePolicy", False) else ""
    return Failure(
        source_id=str(getattr(message, "IngestionSourceId", "") or ""),
        table=str(getattr(message, "Table", "") or ""),
        error=f"ADX reported the ingestion failed{origin}: " + " ".join(parts),
        failed_on=getattr(message, "FailedOn", None),
    )


def dead_letter_for(kept: Kept, failure: Failure, rows: int, size: int) -> dict[str, Any]:
    """The IngestDeadLetters row that makes a failed ingestion visible where operators look."""
    row = empty_dead_letter_row()
    row["Timestamp"] = failure.failed_on or kept.creation_time
    row["RecordId"] = record_id(failure.source_id.encode())
    row["Reason"] = RejectReason.INGESTION_FAILED.value
    row["Detail"] = mask_secrets(f"{kept.table}: {rows} rows: {failure.error}")[:2048]
    row["RawPayload"] = kept.name
    row["RawEncoding"] = "blob"
    row["RawSize"] = size
    row["IsRawTruncated"] = False
    batch = kept.name.split("/")
    row["EventPartitionId"] = batch[0].removeprefix("partition-") if batch else ""
    return dict(row)


class StatusWatcher:
    """Reads ADX's status reports and settles the pending copies of queued ingestions."""

    def __init__(
        self,
        sink: AdxSink,
        queues: Any,
        *,
        on_failure: Callable[[Failure], None] = lambda _: None,
        max_age: timedelta = MAX_AGE,
    ) -> None:
        self.sink = sink
        self.queues = queues
        """``azure.kusto.ingest.status.KustoIngestStatusQueues`` (``success``, ``failure``)."""
        self.on_failure = on_failure
        self.max_age = max_age

    def check(self, now: datetime | None = None) -> StatusCounts:
        """Settle every reported ingestion, then keep the copies that waited too long."""
        counts = StatusCounts()
        store = self.sink.dead_letters
        for message in self._drain(self.queues.success):
            source = str(getattr(message, "IngestionSourceId", "") or "")
            if store.release(source):
                counts.succeeded += 1
            else:
                counts.unknown += 1
        for message in self._drain(self.queues.failure):
            if self._fail(failure_from(message)):
                counts.failed += 1
            else:
                counts.unknown += 1
        deadline = (now or datetime.now(UTC)) - self.max_age
        for pending in store.pending():
            if pending.created is not None and pending.created < deadline:
                hours = self.max_age.total_seconds() / 3600
                failure = Failure(
                    pending.source_id,
                    pending.table,
                    f"no ingestion status from ADX within {hours:g} hours",
                    None,
                )
                if self._fail(failure):
                    counts.expired += 1
        return counts

    def _drain(self, queue: Any) -> Iterable[Any]:
        read = 0
        while read < MAX_MESSAGES:
            messages = queue.pop(PAGE)
            if not messages:
                return
            read += len(messages)
            yield from messages

    def _fail(self, failure: Failure) -> bool:
        store = self.sink.dead_letters
        kept = store.keep_pending(failure.source_id, failure.error)
        if kept is None:
            return False
        self.sink.kept.append(kept.name)
        self.on_failure(failure)
        if kept.table != DEAD_LETTER_TABLE:  # a failing dead-letter table is not fed its own news
            letter = dead_letter_for(kept, failure, kept.rows, kept.size)
            with Spool() as spool:
                self.sink.ingest(DEAD_LETTER_TABLE, encode([letter], spool), BatchId())
        return True


def status_queues(sink: AdxSink) -> Any:
    """The status queues of the sink's queued ingest client."""
    from azure.kusto.ingest.status import KustoIngestStatusQueues

    return KustoIngestStatusQueues(sink.client)  # type: ignore[no-untyped-call]

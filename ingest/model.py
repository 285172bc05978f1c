"""The pipeline's data types: event input, batch ids, outcomes, rows and batch results.

Rows are TypedDicts (cheap to build, serialised as they are); a test checks that their keys and
types match ``schemas/`` so that Python and KQL never drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any, TypedDict, cast

from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table


class RejectReason(StrEnum):
    """Why a record became a dead letter instead of a landing row."""

    EMPTY_BODY = "empty_body"
    BAD_GZIP = "bad_gzip"
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_A_RECORD = "not_a_record"
    UNSUPPORTED_CATEGORY = "unsupported_category"
    UNKNOWN_SHAPE = "unknown_shape"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_FIELD = "bad_field"
    INTERNAL_ERROR = "internal_error"
    INGESTION_FAILED = "ingestion_failed"
    """ADX reported a queued ingestion as failed: the batch is kept in the dead-letter container."""


class UsageSource(StrEnum):
    """Where a row's token counts came from."""

    RESPONSE = "response"
    STREAM = "stream"
    LLM_LOG = "llm_log"
    POLICY = "policy"
    SALVAGED = "salvaged"
    ESTIMATED = "estimated"
    NONE = "none"


class SourceFormat(StrEnum):
    """The shape a record arrived in."""

    DIAGNOSTICS = "diagnostics"
    LOG_ANALYTICS = "log_analytics"
    POLICY = "policy"


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Event Hub lineage of one event (all optional: files carry none of it)."""

    partition_id: str = ""
    sequence_number: int | None = None
    offset: str = ""
    enqueued_time: str | None = None


@dataclass(frozen=True, slots=True)
class EventInput:
    """One Event Hub event body with its lineage."""

    body: bytes
    meta: EventMeta = field(default_factory=EventMeta)


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


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A record of an envelope that does not parse on its own (its neighbours did)."""

    raw: bytes
    detail: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why an event body or a record cannot become a landing row (it becomes a dead letter)."""

    reason: RejectReason
    detail: str
    source_format: str = ""


class LandingRow(TypedDict):
    """A row of `ApimLogsLanding` (columns in table order; checked against schemas/ by a test)."""

    Timestamp: str | None
    Category: str
    SourceFormat: str
    RecordId: str
    CorrelationId: str
    RequestId: str
    SequenceNumber: int | None
    ResourceId: str
    Region: str
    SubscriptionId: str
    ProductId: str
    UserId: str
    CallerIpAddress: str
    ApiId: str
    ApiRevision: str
    OperationId: str
    Method: str
    Url: str
    BackendId: str
    BackendUrl: str
    BackendRegion: str
    ResponseCode: int | None
    BackendResponseCode: int | None
    IsRequestSuccess: bool | None
    DurationMs: int | None
    BackendTimeMs: int | None
    ClientTimeMs: int | None
    RequestSize: int | None
    ResponseSize: int | None
    Cache: str
    LastErrorSource: str
    LastErrorReason: str
    LastErrorMessage: str
    LastErrorSection: str
    ErrorCode: str
    ErrorMessage: str
    ThrottledBy: str
    DeploymentName: str
    ModelName: str
    ApiVersion: str
    OperationKind: str
    IsStreaming: bool | None
    FinishReason: str
    PromptTokens: int | None
    CompletionTokens: int | None
    TotalTokens: int | None
    CachedTokens: int | None
    ReasoningTokens: int | None
    UsageSource: str
    PromptText: str
    CompletionText: str
    IsRequestBodyTruncated: bool | None
    IsResponseBodyTruncated: bool | None
    IsRecordTruncated: bool | None
    EventPartitionId: str
    EventSequenceNumber: int | None
    EventOffset: str
    EventEnqueuedTime: str | None
    RecordIndex: int | None
    CacheWriteTokens: int | None
    UsageFlag: str


class DeadLetterRow(TypedDict):
    """A row of `IngestDeadLetters` (columns in table order; checked against schemas/ by a test)."""

    Timestamp: str | None
    RecordId: str
    Reason: str
    Detail: str
    SourceFormat: str
    RawPayload: str
    RawEncoding: str
    RawSize: int | None
    IsRawTruncated: bool | None
    EventPartitionId: str
    EventSequenceNumber: int | None
    EventOffset: str
    EventEnqueuedTime: str | None
    RecordIndex: int | None


@cache
def _empty_row(table: str) -> dict[str, Any]:
    return load_table(table).empty_row()


_LANDING_ROW: list[LandingRow] = []
"""The empty landing row every row is copied from (one lookup less per row than the cache)."""


def empty_landing_row() -> LandingRow:
    """A landing row with every column empty, in schema order (the schema is read on first use)."""
    if not _LANDING_ROW:
        _LANDING_ROW.append(cast(LandingRow, _empty_row(LANDING_TABLE)))
    return _LANDING_ROW[0].copy()


def empty_dead_letter_row() -> DeadLetterRow:
    """A dead-letter row with every column empty, in schema order."""
    return cast(DeadLetterRow, _empty_row(DEAD_LETTER_TABLE).copy())


@dataclass(slots=True)
class BatchCounts:
    """How many events, records, rows, dead letters and bytes a batch (or a run) had."""

    events: int = 0
    records: int = 0
    rows: int = 0
    dead_letters: int = 0
    bytes: int = 0

    @property
    def reconciles(self) -> bool:
        """Every input record ended as a row or a dead letter."""
        return self.records == self.rows + self.dead_letters

    def add(self, other: BatchCounts) -> None:
        """Add another batch's counts."""
        self.events += other.events
        self.records += other.records
        self.rows += other.rows
        self.dead_letters += other.dead_letters
        self.bytes += other.bytes

    def as_dict(self) -> dict[str, int]:
        """Counts for a log line."""
        return {
            "events": self.events,
            "records": self.records,
            "rows": self.rows,
            "dead_letters": self.dead_letters,
            "bytes": self.bytes,
        }


@dataclass(slots=True)
class BatchResult:
    """What one batch became: its rows and dead letters, or (``handed``) only how many there were.

    ``counts().reconciles`` always holds: every record is a row or a dead letter, held or handed.
    """

    events: int = 0
    records: int = 0
    bytes_in: int = 0
    rows: list[LandingRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    rows_handed: int = 0
    """Rows handed to a sink slice by slice and no longer held here (``ingest.batch``)."""
    dead_letters_handed: int = 0
    """Dead letters handed over the same way."""

    def add(self, other: BatchResult, *, keep_rows: bool) -> None:
        """Count another part of the batch in (and take its rows too, with ``keep_rows``)."""
        self.events += other.events
        self.records += other.records
        self.bytes_in += other.bytes_in
        self.rows_handed += other.rows_handed
        self.dead_letters_handed += other.dead_letters_handed
        if keep_rows:
            self.rows.extend(other.rows)
            self.dead_letters.extend(other.dead_letters)
        else:
            self.rows_handed += len(other.rows)
            self.dead_letters_handed += len(other.dead_letters)

    def counts(self) -> BatchCounts:
        """The batch's counts."""
        return BatchCounts(
            self.events,
            self.records,
            len(self.rows) + self.rows_handed,
            len(self.dead_letters) + self.dead_letters_handed,
            self.bytes_in,
        )

"""A batch of Event Hub events -> landing rows and dead letters whose counts reconcile.

Pure: no ``azure.*``, no I/O. One poison record never affects its neighbours: each record is
flattened on its own, and even an unexpected bug in the flattening of one record becomes a dead
letter (``internal_error``) instead of an exception that would sink the batch.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import orjson
import xxhash

from ingest.config import CoreSettings
from ingest.core.decode import GZIP_MAGIC, decode_body, inflate_partially, split_records
from ingest.core.flatten import Flattener
from ingest.core.privacy import mask_bytes, mask_secrets
from ingest.model import (
    BatchResult,
    DeadLetterRow,
    EventInput,
    EventMeta,
    Rejected,
    RejectReason,
    Unparsed,
    empty_dead_letter_row,
)

MAX_RECORDS_PER_EVENT = 50_000
"""Records one event may hold: an Event Hubs event is at most 1 MB, and an APIM record takes
hundreds of bytes or more, so more is a record bomb (a gzip body of millions of ``{}``), refused
whole as ``too_large`` before a row is built for any of them (and, past 1 MB, before its records
are parsed: ``decode.COUNT_ABOVE``)."""


def record_id(raw: bytes) -> str:
    """Content hash of an input record or body: the same input always gets the same id."""
    return xxhash.xxh3_128_hexdigest(raw)


def record_ids(decoded_body: bytes, count: int) -> list[str]:
    """Ids of the records of one event: a hash of the decoded body and the record's position.

    The same event body (a replayed batch, a Capture backfill over live data, gzip or not) always
    yields the same ids, without re-serialising every record. All ``count`` at once: one call
    per event, not one per record.
    """
    digest = xxhash.xxh3_128_digest(decoded_body)
    hexdigest = xxhash.xxh3_128_hexdigest
    return [hexdigest(digest + index.to_bytes(4, "big")) for index in range(count)]


class Pipeline:
    """Flattens batches of events with one set of settings (build once, reuse per batch)."""

    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.settings = settings or CoreSettings()
        self.flattener = Flattener(self.settings)

    def process(self, events: Iterable[EventInput]) -> BatchResult:
        """Flatten every event of a batch."""
        result = BatchResult()
        for event in events:
            self.process_event(event, result)
        return result

    def process_event(self, event: EventInput, result: BatchResult) -> None:
        """Flatten one event body into ``result``."""
        result.events += 1
        result.bytes_in += len(event.body)
        meta = event.meta
        decoded = decode_body(event.body, MAX_RECORDS_PER_EVENT)
        if isinstance(decoded, Rejected):
            self._reject_event(decoded, event, result)
            return
        document, data = decoded
        records = split_records(document)
        if isinstance(records, Rejected):
            self._reject_event(records, event, result)
            return
        if len(records) > MAX_RECORDS_PER_EVENT:  # a record bomb: a few KB of gzip, millions of {}
            self._reject_event(
                Rejected(
                    RejectReason.TOO_LARGE,
                    f"event holds {len(records)} records, more than {MAX_RECORDS_PER_EVENT}",
                ),
                event,
                result,
            )
            return
        ids = record_ids(data, len(records))
        result.records += len(records)
        flatten = self.flattener.flatten
        rows = result.rows
        enqueued_time = meta.enqueued_time
        fallback_time = enqueued_time or self.settings.fallback_time
        partition_id, sequence_number, offset = meta.partition_id, meta.sequence_number, meta.offset
        for index, record in enumerate(records):
            if record.__class__ is Unparsed:  # salvaged from an envelope that did not parse whole
                result.dead_letters.append(
                    self.dead_letter(
                        RejectReason.NOT_JSON,
                        record.detail,
                        "",
                        record.raw,
                        meta,
                        index,
                        ids[index],
                    )
                )
                continue
            try:
                outcome = flatten(record, fallback_time)
            except (RecursionError, orjson.JSONEncodeError) as exc:
                # A value nested deeper than text can hold (orjson writes 254 levels, Python
                # recurses about 1,000; the parser reads up to 1,024): the record's fault.
                outcome = Rejected(
                    RejectReason.BAD_FIELD,
                    f"a value is nested too deep to keep as text ({type(exc).__name__}: {exc})",
                )
            except Exception as exc:  # noqa: BLE001 - the safety net: a bug costs one record, not the batch
                outcome = Rejected(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            if isinstance(outcome, Rejected):
                result.dead_letters.append(
                    self.dead_letter(
                        outcome.reason,
                        outcome.detail,
                        outcome.source_format,
                        _raw_of(record),
                        meta,
                        index,
                        ids[index],
                    )
                )
                continue
            # Four stores cost less than an update from a dict of them (one per row).
            outcome["EventPartitionId"] = partition_id
            outcome["EventSequenceNumber"] = sequence_number
            outcome["EventOffset"] = offset
            outcome["EventEnqueuedTime"] = enqueued_time
            outcome["RecordId"] = ids[index]
            outcome["RecordIndex"] = index
            rows.append(outcome)

    def _reject_event(self, reject: Rejected, event: EventInput, result: BatchResult) -> None:
        result.records += 1
        raw, detail = event.body, reject.detail
        if raw[:2] == GZIP_MAGIC:
            # Keep what inflates, masked, never the compressed bytes: those inflate to any secret
            # (a damaged body, a bomb, or a whole one that is not JSON).
            limit = self.settings.dead_letter_max_bytes
            inflated = inflate_partially(raw, limit + 1)
            whole = reject.reason is not RejectReason.BAD_GZIP and len(inflated) <= limit
            raw = inflated if whole else _without_last_word(inflated)
            detail = f"{detail} (kept: what it inflates to, not its {len(event.body)} bytes)"
        # One id per event: a replay of the same event (same partition and sequence number, or
        # the same bytes from a file) is a duplicate; two events with the same bad bytes are not.
        meta = event.meta
        lineage = (
            b""
            if meta.sequence_number is None
            else f"|{meta.partition_id}|{meta.sequence_number}".encode()
        )
        event_id = record_id(event.body + lineage)
        result.dead_letters.append(
            self.dead_letter(reject.reason, detail, "", raw, meta, -1, event_id)
        )

    def dead_letter(
        self,
        reason: RejectReason,
        detail: str,
        source_format: str,
        raw: bytes,
        meta: EventMeta,
        index: int,
        dead_letter_id: str | None = None,
    ) -> DeadLetterRow:
        """A dead-letter row: reason, detail, the raw payload (secrets masked, cut) and lineage.

        Its id is the record's (the event's body and the record's place in it), so one dead letter
        is one record: the same bad record replayed has the same id, two bad records never do.
        """
        limit = self.settings.dead_letter_max_bytes
        row = empty_dead_letter_row()
        row["Timestamp"] = meta.enqueued_time
        row["RecordId"] = dead_letter_id or record_id(raw)
        row["Reason"] = reason.value
        # Masked, then cut: a secret across the cut is masked whole (the text beyond 8 KB, never
        # kept, is not read).
        row["Detail"] = mask_secrets(detail[:8192])[:2048]
        row["SourceFormat"] = source_format
        row["RawSize"] = len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            row["RawEncoding"] = "base64"
            cut = mask_bytes(raw)[: limit * 3 // 4]  # masked too: base64 is no protection
            row["RawPayload"] = base64.b64encode(cut).decode("ascii")
            row["IsRawTruncated"] = len(cut) < len(raw)
        else:
            row["RawEncoding"] = "utf8"
            masked = mask_secrets(text).encode("utf-8")
            row["RawPayload"] = masked[:limit].decode("utf-8", errors="ignore")
            row["IsRawTruncated"] = len(masked) > limit
        row["EventPartitionId"] = meta.partition_id
        row["EventSequenceNumber"] = meta.sequence_number
        row["EventOffset"] = meta.offset
        row["EventEnqueuedTime"] = meta.enqueued_time
        row["RecordIndex"] = index
        return row


_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.~%-")
"""Bytes a credential is written with (base64, hex, JWTs, key=value)."""


def _without_last_word(prefix: bytes) -> bytes:
    """A prefix of a longer text without its last word.

    A credential cut there is no longer recognisable as one: it is dropped, not kept unmasked.
    """
    end = len(prefix)
    while end and prefix[end - 1] in _WORD_BYTES:
        end -= 1
    return prefix[:end]


def _raw_of(record: Any) -> bytes:
    """A rejected record as bytes to keep: its JSON, else its repr, else a note of what it was."""
    try:
        return orjson.dumps(record)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return repr(record).encode("utf-8", errors="replace")
    except RecursionError:  # nested deeper than the interpreter's stack (orjson stops at 254)
        return f"<a {type(record).__name__} nested too deep to keep>".encode()

"""Azure Data Explorer: the Functions app's sink, and the one classifier of ADX failures.

The only module (with ``kql.apply``, which uses its client and classifier) that imports
``azure.kusto``. Batches go in as one gzip JSON-lines payload per table: queued (one blob per table
per batch, the default), streaming, or managed streaming (falls back to queued). A failure is
classified once (``classify``): transient ones are retried here, then raised so that the trigger's
retry policy replays the batch; terminal ones, and transient ones on the last attempt, leave the
batch in the dead-letter container (``sinks.dead_letters``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoError

from ingest.config import Settings
from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.identity import credential
from ingest.model import BatchId
from ingest.schema import mapping_name
from ingest.sinks.base import Rows, admit
from ingest.sinks.dead_letters import DeadLetterStore, dead_letter_container


def connection(uri: str, token_credential: Any | None) -> KustoConnectionStringBuilder:
    """A connection to a cluster or ingestion URL (no credential: a local endpoint)."""
    if token_credential is None:
        return KustoConnectionStringBuilder.with_no_authentication(uri)
    return KustoConnectionStringBuilder.with_azure_token_credential(uri, token_credential)


def connect(cluster: str, token_credential: Any | None) -> KustoClient:
    """A Kusto client for management commands and queries."""
    return KustoClient(connection(cluster, token_credential))


def error_message(exc: BaseException) -> str:
    """An exception's message on one line, cut at 2,000 characters."""
    return " ".join(str(exc).split())[:2000]


def _is_permanent(exc: KustoError) -> bool:
    error = getattr(exc, "error", None)
    permanent = getattr(error, "permanent", None)
    if permanent is not None:
        return bool(permanent)
    http = getattr(exc, "http_response", None)
    status = getattr(http, "status_code", None)
    return status is not None and 400 <= status < 500 and status not in (408, 429)


def classify(exc: BaseException) -> type[TransientIngestError] | type[TerminalIngestError]:
    """The one place where an ADX failure is judged transient or terminal.

    Transient: throttling, timeouts, network errors, 5xx, and service errors not marked permanent.
    Terminal: mapping and schema errors, authentication and authorization, other 4xx, and errors the
    service marks permanent. Unknown errors count as transient: the batch is retried, then kept.
    """
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
    from azure.kusto.data.exceptions import KustoAuthenticationError, KustoThrottlingError
    from azure.kusto.ingest.exceptions import KustoMappingError, KustoMissingMappingError

    if isinstance(exc, (KustoMappingError, KustoMissingMappingError, KustoAuthenticationError)):
        return TerminalIngestError
    if isinstance(exc, ClientAuthenticationError):
        return TerminalIngestError
    if isinstance(exc, KustoThrottlingError):
        return TransientIngestError
    if isinstance(exc, KustoError):
        return TerminalIngestError if _is_permanent(exc) else TransientIngestError
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return (
            TerminalIngestError
            if 400 <= status < 500 and status not in (408, 429)
            else TransientIngestError
        )
    return TransientIngestError


STREAMING_MAX_RAW_BYTES = 1 << 20
"""Raw JSON bytes per streaming request. ADX refuses a streaming request above 4 MB, update-policy
output included; a landing row fans out to up to three curated tables, so a batch is split into
requests of at most 1 MB of rows (queued ingestion takes any size)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """Rows as gzip JSON lines, with their uncompressed size (ADX's ``RawDataSize``)."""

    data: bytes
    raw_size: int
    rows: int
    creation_time: str | None


def jsonl_gzip(rows: Rows) -> bytes:
    """Rows as gzip-compressed JSON lines (ADX's ``multijson`` format)."""
    return encode(rows).data


def encode(rows: Rows) -> Payload:
    """Rows as a payload: gzip JSON lines, raw size, and the earliest record time.

    Rows are compressed one by one as they are encoded: the uncompressed JSON of a batch (ten
    times its compressed size, for logs) is never held in memory whole.
    """
    out = io.BytesIO()
    raw_size = 0
    earliest: str | None = None
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=5, mtime=0) as compressor:
        for row in rows:
            line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
            compressor.write(line)
            raw_size += len(line)
            timestamp = row.get("Timestamp")
            if timestamp and (earliest is None or str(timestamp) < earliest):
                earliest = str(timestamp)
    return Payload(out.getvalue(), raw_size, len(rows), earliest)


def _split(rows: Rows, max_raw_bytes: int) -> list[Rows]:
    """Consecutive slices of rows whose JSON stays under ``max_raw_bytes`` (at least one row)."""
    slices: list[Rows] = []
    start = size = 0
    for index, row in enumerate(rows):
        length = len(orjson.dumps(row)) + 1
        if index > start and size + length > max_raw_bytes:
            slices.append(rows[start:index])
            start, size = index, 0
        size += length
    if start < len(rows):
        slices.append(rows[start:])
    return slices


class AdxSink:
    """Batches to ADX: one compressed blob per table (queued) or requests (streaming, managed).

    Queued ingestion is asynchronous: ADX reports the outcome later, to the status queues. With
    ``track_status`` each queued payload asks for that report and a copy waits in the dead-letter
    container (``pending/``) until ``sinks.ingestion_status`` reads the report: dropped when it
    succeeded, kept for ``redrive`` (with a dead letter and a metric) when it failed.
    """

    def __init__(
        self,
        client: Any,
        database: str,
        dead_letters: DeadLetterStore,
        *,
        retries: int = 3,
        retry_base_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        mode: str = "queued",
        track_status: bool = True,
    ) -> None:
        self.client = client
        self.database = database
        self.dead_letters = dead_letters
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.sleep = sleep
        self.mode = mode
        self.track_status = track_status and mode == "queued"
        self.kept: list[str] = []

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Ingest every table; keep what ADX refuses for good, or on the trigger's last attempt."""
        for table, rows in admit(tables).items():
            if not rows:
                continue
            parts = _split(rows, STREAMING_MAX_RAW_BYTES) if self.mode == "streaming" else [rows]
            for part in parts:
                payload = encode(part)
                try:
                    self.ingest(table, payload, batch)
                except TerminalIngestError as exc:
                    self._keep(batch, table, payload, exc)
                except TransientIngestError as exc:
                    if not final_attempt:
                        raise
                    self._keep(batch, table, payload, exc)

    def _keep(self, batch: BatchId, table: str, payload: Payload, exc: Exception) -> None:
        self.kept.append(
            self.dead_letters.put(
                batch, table, payload.data, payload.rows, str(exc), payload.creation_time
            )
        )

    def ingest(self, table: str, payload: Payload, batch: BatchId | None = None) -> None:
        """One payload into a table, retried with backoff while transient."""
        from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
        from azure.kusto.ingest import IngestionProperties, ReportLevel, StreamDescriptor

        report = ReportLevel.FailuresAndSuccesses if self.track_status else ReportLevel.DoNotReport
        properties = IngestionProperties(
            self.database,
            table,
            data_format=DataFormat.MULTIJSON,
            ingestion_mapping_kind=IngestionMappingKind.JSON,
            ingestion_mapping_reference=mapping_name(table),
            report_level=report,
            additional_properties=(
                {"creationTime": payload.creation_time} if payload.creation_time else None
            ),
        )
        for attempt in range(self.retries + 1):
            source_id = uuid.uuid4()
            try:
                if self.track_status:
                    self.dead_letters.hold(
                        str(source_id),
                        batch or BatchId(),
                        table,
                        payload.data,
                        payload.rows,
                        payload.creation_time,
                    )
                stream = StreamDescriptor(
                    io.BytesIO(payload.data),
                    source_id=source_id,
                    is_compressed=True,
                    size=payload.raw_size,
                )
                self.client.ingest_from_stream(stream, properties)
                return
            except Exception as exc:
                if self.track_status:
                    self._release_quietly(str(source_id))
                kind = classify(exc)
                message = (
                    f"ingesting {payload.rows} rows ({payload.raw_size} bytes) into `{table}` "
                    f"failed: {error_message(exc)}"
                )
                if kind is TerminalIngestError or attempt == self.retries:
                    raise kind(message) from exc
                self.sleep(self.retry_base_seconds * (2**attempt) * (0.5 + random.random()))

    def _release_quietly(self, source_id: str) -> None:
        """Drop the copy of an ingestion that was never queued.

        Best effort: a copy left behind outlives the status window and is kept, and a duplicate
        is harmless downstream (the dedup views).
        """
        from azure.core.exceptions import AzureError

        with contextlib.suppress(AzureError):
            self.dead_letters.release(source_id)


def ingest_client(
    mode: str, cluster_uri: str, ingest_uri: str, token_credential: Any | None
) -> Any:
    """The azure-kusto-ingest client for an ingestion mode (``None`` credential: no auth, local)."""
    from azure.kusto.ingest import (
        KustoStreamingIngestClient,
        ManagedStreamingIngestClient,
        QueuedIngestClient,
    )

    if mode == "streaming":
        return KustoStreamingIngestClient(connection(cluster_uri, token_credential))
    if mode == "managed":
        return ManagedStreamingIngestClient(
            connection(cluster_uri, token_credential), connection(ingest_uri, token_credential)
        )
    return QueuedIngestClient(connection(ingest_uri, token_credential))


def redrive(sink: AdxSink, report: Callable[[str], None]) -> tuple[int, int]:
    """Re-ingest every kept batch; delete each one ADX accepts. Returns (redriven, still kept).

    A redriven batch keeps its original ``creationTime``; with status tracking, a copy waits
    for ADX's report as for any queued ingestion.
    """
    done = failed = 0
    for kept in sink.dead_letters.items():
        data = sink.dead_letters.read(kept.name)
        raw = gzip.decompress(data)
        payload = Payload(data, len(raw), raw.count(b"\n"), kept.creation_time)
        try:
            sink.ingest(kept.table, payload)
        except (TerminalIngestError, TransientIngestError) as exc:
            failed += 1
            report(f"kept  {kept.name}: {exc}")
            continue
        sink.dead_letters.delete(kept.name)
        done += 1
        report(f"ok    {kept.name}")
    return done, failed


def sink_from_settings(settings: Settings, *, mode: str | None = None) -> AdxSink:
    """The app's sink from its settings: ingest client, dead-letter container, retries."""
    identity = credential(settings.managed_identity_client_id)
    client = ingest_client(
        mode or settings.ingestion_mode, settings.adx_cluster_uri, settings.adx_ingest_uri, identity
    )
    container = dead_letter_container(
        settings.storage_connection,
        settings.storage_blob_uri,
        settings.dead_letter_container,
        identity,
    )
    return AdxSink(
        client,
        settings.adx_database,
        DeadLetterStore(container),
        retries=settings.adx_retries,
        retry_base_seconds=settings.adx_retry_base_seconds,
        mode=mode or settings.ingestion_mode,
    )

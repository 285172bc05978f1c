"""Azure Data Explorer: the Functions app's sink, and the one classifier of ADX failures.

The only module (with ``kql.apply``, which uses its client and classifier) that imports
``azure.kusto``. Batches go in as one gzip JSON-lines payload per table: queued (one blob per table
per batch, the default), streaming, or managed streaming (falls back to queued). A failure is
classified once (``classify``): transient ones are retried here, then raised so that the trigger's
retry policy replays the batch; terminal ones, and transient ones on the last attempt, leave the
batch in the dead-letter container (``sinks.dead_letters``).
"""

from __future__ import annotations

import gzip
import io
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoError

from ingest.config import Settings
from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.identity import credential
from ingest.model import BatchId
from ingest.schema import mapping_name
from ingest.sinks.base import Rows
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


def jsonl_gzip(rows: Rows) -> bytes:
    """Rows as gzip-compressed JSON lines (ADX's ``multijson`` format)."""
    return gzip.compress(b"".join(orjson.dumps(row) + b"\n" for row in rows), compresslevel=5)


def _creation_time(rows: Rows) -> str | None:
    """The earliest record time: extents then age (retention, caching) with the data."""
    times = [str(r["Timestamp"]) for r in rows if r.get("Timestamp")]
    return min(times) if times else None


class AdxSink:
    """Batches to ADX: one compressed blob per table (queued) or a stream (streaming, managed)."""

    def __init__(
        self,
        client: Any,
        database: str,
        dead_letters: DeadLetterStore,
        *,
        retries: int = 3,
        retry_base_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.database = database
        self.dead_letters = dead_letters
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.sleep = sleep
        self.kept: list[str] = []

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Ingest every table; keep what ADX refuses for good, or on the trigger's last attempt."""
        for table, rows in tables.items():
            if not rows:
                continue
            payload = jsonl_gzip(rows)
            try:
                self.ingest(table, payload, _creation_time(rows))
            except TerminalIngestError as exc:
                self.kept.append(self.dead_letters.put(batch, table, payload, len(rows), str(exc)))
            except TransientIngestError as exc:
                if not final_attempt:
                    raise
                self.kept.append(self.dead_letters.put(batch, table, payload, len(rows), str(exc)))

    def ingest(self, table: str, payload: bytes, creation_time: str | None) -> None:
        """One gzip JSON-lines payload into a table, retried with backoff while transient."""
        from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
        from azure.kusto.ingest import IngestionProperties, StreamDescriptor

        properties = IngestionProperties(
            self.database,
            table,
            data_format=DataFormat.MULTIJSON,
            ingestion_mapping_kind=IngestionMappingKind.JSON,
            ingestion_mapping_reference=mapping_name(table),
            additional_properties={"creationTime": creation_time} if creation_time else None,
        )
        for attempt in range(self.retries + 1):
            try:
                stream = StreamDescriptor(
                    io.BytesIO(payload), is_compressed=True, size=len(payload)
                )
                self.client.ingest_from_stream(stream, properties)
                return
            except Exception as exc:
                kind = classify(exc)
                message = (
                    f"ingesting {len(payload)} bytes into `{table}` failed: {error_message(exc)}"
                )
                if kind is TerminalIngestError or attempt == self.retries:
                    raise kind(message) from exc
                self.sleep(self.retry_base_seconds * (2**attempt) * (0.5 + random.random()))


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
    """Re-ingest every kept batch; delete each one ADX accepts. Returns (redriven, still kept)."""
    done = failed = 0
    for name, table in sink.dead_letters.items():
        try:
            sink.ingest(table, sink.dead_letters.read(name), None)
        except (TerminalIngestError, TransientIngestError) as exc:
            failed += 1
            report(f"kept  {name}: {exc}")
            continue
        sink.dead_letters.delete(name)
        done += 1
        report(f"ok    {name}")
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
    )

"""Azure Data Explorer: the Functions app's sink, and the one classifier of ADX failures.

The only module (with ``kql.apply``, which uses its client and classifier) that imports
``azure.kusto``. Batches go in as gzip JSON-lines payloads per table: queued (one blob per table
per batch unless its rows pass ADX's recommended blob size, the default), streaming, or managed
streaming (falls back to queued). A batch arrives in slices (``write_slices``), each compressed
into its tables' payloads as it comes; the payloads wait in spools (``sinks.spooled``: memory,
then a temporary file) until the batch is sent, and are let go when it ends, however it ends. A
failure is classified once (``classify``): transient ones are retried here, then raised so that
the trigger's retry policy replays the batch; terminal ones, and transient ones on the last
attempt, leave the batch in the dead-letter container (``sinks.dead_letters``).
"""

from __future__ import annotations

import contextlib
import gzip
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoError

from ingest.config import Settings
from ingest.errors import ConfigError, TerminalIngestError, TransientIngestError
from ingest.identity import credential
from ingest.model import BatchId
from ingest.schema import DEAD_LETTER_TABLE, mapping_name
from ingest.sinks.base import Rows, Tables, admit
from ingest.sinks.dead_letters import DeadLetterStore, dead_letter_container
from ingest.sinks.spooled import SPOOL_MEMORY_BYTES, Span, Spool


def connection(uri: str, token_credential: Any | None) -> KustoConnectionStringBuilder:
    """A connection to a cluster or ingestion URL (no credential: a local endpoint)."""
    if token_credential is None:
        if not uri.startswith("http://"):  # the SDK sends no credential over https
            raise ConfigError(
                f"no authentication is for a local endpoint (http://..., such as `python -m "
                f"ingest serve`); `{uri}` needs a sign-in (drop --no-auth)"
            )
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
requests of at most 1 MB of rows."""

QUEUED_MAX_RAW_BYTES = 1 << 30
"""Raw JSON bytes per queued (and managed, when it falls back to queued) ingestion. Microsoft's
guidance for the ingest library is to send 100 MB to 1 GB of uncompressed data per ingestion
(<https://learn.microsoft.com/azure/data-explorer/kusto/api/netfx/kusto-ingest-best-practices>);
the ingestion batching policy seals a batch at about 1 GB of raw data by default, the size it
calls optimal (<https://learn.microsoft.com/azure/data-explorer/kusto/management/batching-policy>);
and one ingested file may not pass 6 GB (<https://learn.microsoft.com/azure/data-explorer/lightingest>).
A table's rows past 1 GiB are split into parts, each ingested (and kept, on failure) on its own:
the worst batch, 12.8 million of the smallest rows, is some 8 GB raw. 1 GiB also keeps the raw size
a gzip trailer records (modulo 4 GiB) exact."""


@dataclass(frozen=True, slots=True)
class Payload:
    """Rows as gzip JSON lines in a spool, with their uncompressed size (ADX's ``RawDataSize``).

    The bytes live as long as their spool: ``write_slices`` closes its spools when the batch ends.
    """

    body: Span
    raw_size: int
    rows: int
    creation_time: str | None

    @property
    def size(self) -> int:
        """Compressed bytes."""
        return self.body.size

    def read(self) -> bytes:
        """The compressed bytes (small payloads, tests)."""
        return self.body.read()


def jsonl_gzip(rows: Rows) -> bytes:
    """Rows as gzip-compressed JSON lines (ADX's ``multijson`` format)."""
    with Spool() as spool:
        return encode(rows, spool).read()


def encode(rows: Rows, spool: Spool) -> Payload:
    """Rows as a payload in ``spool``: gzip JSON lines, raw size, and the earliest record time."""
    encoder = Encoder(spool)
    for row in rows:
        encoder.add(row)
    return encoder.finish()


class Encoder:
    """Rows compressed into one payload as they come, with its row count, raw size, earliest time.

    Rows are compressed one by one as they are encoded, into the end of ``spool``: neither the
    uncompressed JSON of a batch (ten times its compressed size, for logs) nor its rows need be
    held in memory whole, and past the spool's memory its compressed bytes are not either.
    """

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._start = spool.size
        self._compressor = gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=5, mtime=0)
        self.raw_size = 0
        self.rows = 0
        self.earliest: str | None = None

    def add(self, row: Mapping[str, Any], line: bytes | None = None) -> None:
        """Append a row (``line``: its JSON line, when already encoded)."""
        if line is None:
            line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        self._compressor.write(line)
        self.raw_size += len(line)
        self.rows += 1
        timestamp = row.get("Timestamp")
        if timestamp and (self.earliest is None or str(timestamp) < self.earliest):
            self.earliest = str(timestamp)

    def finish(self) -> Payload:
        """The payload (the encoder takes no more rows)."""
        self._compressor.close()
        return Payload(self._spool.span(self._start), self.raw_size, self.rows, self.earliest)


class TablePayloads:
    """One table's rows of a batch as payloads in one spool: parts of at most ``max_raw_bytes``.

    A context manager: leaving it lets the spool (and its temporary file, if any) go.
    """

    def __init__(self, max_raw_bytes: int, spool_bytes: int = SPOOL_MEMORY_BYTES) -> None:
        self.max_raw_bytes = max_raw_bytes
        self.done: list[Payload] = []
        self.spool = Spool(spool_bytes)
        self._encoder = Encoder(self.spool)

    def add(self, rows: Rows) -> None:
        """Append rows; a part that would pass the limit is finished first (never empty)."""
        limit = self.max_raw_bytes
        for row in rows:
            line = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
            if self._encoder.rows and self._encoder.raw_size + len(line) > limit:
                self.done.append(self._encoder.finish())
                self._encoder = Encoder(self.spool)
            self._encoder.add(row, line)

    def finish(self) -> list[Payload]:
        """Every payload, in row order (none for no rows)."""
        if self._encoder.rows:
            self.done.append(self._encoder.finish())
        return self.done

    def close(self) -> None:
        """Let the payloads' bytes go."""
        self.spool.close()

    def __enter__(self) -> TablePayloads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        max_raw_bytes: int | None = None,
        spool_bytes: int = SPOOL_MEMORY_BYTES,
    ) -> None:
        self.client = client
        self.database = database
        self.dead_letters = dead_letters
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.sleep = sleep
        self.mode = mode
        self.track_status = track_status and mode == "queued"
        self.max_raw_bytes = max_raw_bytes
        """Raw bytes per payload; ``None``: the mode's (``STREAMING_MAX_RAW_BYTES`` or
        ``QUEUED_MAX_RAW_BYTES``)."""
        self.spool_bytes = spool_bytes
        self.kept: list[str] = []

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Ingest every table; keep what ADX refuses for good, or on the trigger's last attempt."""
        self.write_slices(batch, (tables,), final_attempt=final_attempt)

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Encode each slice as it comes (admitted on its own), then ingest table by table.

        One payload per table for the batch, or parts under the mode's raw size
        (``STREAMING_MAX_RAW_BYTES``, ``QUEUED_MAX_RAW_BYTES``; ``max_raw_bytes``): only
        compressed bytes outlive a slice, in a spool per table that moves to a temporary file past
        ``spool_bytes``, closed when the batch ends (sent, kept, raised). Nothing is ingested
        before every slice is encoded: landing rows go first, dead letters after.
        """
        with contextlib.ExitStack() as spools:
            payloads: dict[str, TablePayloads] = {}
            for tables in slices:
                self._encode_slice(tables, payloads, spools)
            # Dead letters last, whichever table a slice filled first.
            for table in sorted(payloads, key=lambda name: name == DEAD_LETTER_TABLE):
                for part, payload in enumerate(payloads[table].finish()):
                    try:
                        self.ingest(table, payload, batch)
                    except TerminalIngestError as exc:
                        self._keep(batch, table, part, payload, exc)
                    except TransientIngestError as exc:
                        if not final_attempt:
                            raise
                        self._keep(batch, table, part, payload, exc)

    def _encode_slice(
        self, tables: Tables, payloads: dict[str, TablePayloads], spools: contextlib.ExitStack
    ) -> None:
        """Admit a slice and append its rows to their tables' payloads (its rows die on return)."""
        for table, rows in admit(tables).items():
            if not rows:
                continue
            if table not in payloads:
                limit = self._raw_limit()
                payloads[table] = spools.enter_context(TablePayloads(limit, self.spool_bytes))
            payloads[table].add(rows)

    def _raw_limit(self) -> int:
        if self.max_raw_bytes is not None:
            return self.max_raw_bytes
        return STREAMING_MAX_RAW_BYTES if self.mode == "streaming" else QUEUED_MAX_RAW_BYTES

    def _keep(
        self, batch: BatchId, table: str, part: int, payload: Payload, exc: Exception
    ) -> None:
        self.kept.append(
            self.dead_letters.put(
                batch, table, payload.body, payload.rows, str(exc), payload.creation_time, part
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
                        payload.body,
                        payload.rows,
                        payload.creation_time,
                    )
                with payload.body.open() as reader:  # each attempt reads from the first byte
                    stream = StreamDescriptor(
                        cast(Any, reader),  # a binary file; the library types it IO[AnyStr]
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
    for ADX's report as for any queued ingestion. Each is downloaded to a spool and measured
    (rows, raw size) as it streams through a decompressor: none is held whole in memory.
    """
    done = failed = 0
    for kept in sink.dead_letters.items():
        with Spool(sink.spool_bytes) as spool:
            body = sink.dead_letters.read(kept.name, spool)
            rows, raw_size = measure(body)
            try:
                sink.ingest(kept.table, Payload(body, raw_size, rows, kept.creation_time))
            except (TerminalIngestError, TransientIngestError) as exc:
                failed += 1
                report(f"kept  {kept.name}: {exc}")
                continue
        sink.dead_letters.delete(kept.name)
        done += 1
        report(f"ok    {kept.name}")
    return done, failed


def measure(body: Span, chunk: int = 1 << 20) -> tuple[int, int]:
    """A gzip JSON-lines payload's rows and raw size, decompressed a chunk at a time."""
    rows = raw_size = 0
    with body.open() as reader, gzip.GzipFile(fileobj=reader, mode="rb") as lines:
        while data := lines.read(chunk):
            rows += data.count(b"\n")
            raw_size += len(data)
    return rows, raw_size


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
